# Ordinal and multinomial data in the layouts R users have (issue 16), fitted in R idioms:
#   ordinal::wine   one row per rating         clmm(rating ~ temp + contact + (1 | judge)),
#                                              Laplace and nAGQ = 10; clm without the judge
#   ordinal::soup   one row per rating         clmm(SURENESS ~ PROD + (1 | RESP)), Laplace
#   MASS::housing   counts as weights          polr(Sat ~ Infl + Type + Cont, weights = Freq)
#   VGAM::pneumo    wide counts                vglm(cbind(normal, mild, severe) ~ log(exposure.time),
#                                                   cumulative(parallel = TRUE))
# Writes the data sets as CSV (the project keeps its own copies) and one JSON fixture per fit
# under tests/fixtures/r/. Sign conventions: clm/clmm/polr write logit P(Y <= j) = theta_j -
# x'beta; VGAM's cumulative() writes theta_j + x'beta (gllmm's default).
# Log-likelihoods are those R prints: the individual-response scale (no multinomial
# coefficients) for clm/clmm/polr; for vglm both VGAM's value and the individual scale.
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])),
                 "common.R"))
load_packages("ordinal", "MASS", "VGAM")

info <- source_info(c("ordinal", "MASS", "VGAM"))

write_data <- function(df, name) {
  path <- file.path(FIXTURE_DIR, paste0(name, ".csv"))
  write.csv(df, path, row.names = FALSE)
  cat("wrote", path, "\n")
}

clm_fixture <- function(cf, name, call, notes, software) {
  fit <- cf$value
  est <- coef(fit)
  se <- sqrt(diag(vcov(fit)))[names(est)]
  out <- list(
    source = info,
    model = list(name = name, formula = call, notes = notes,
                 sign_convention = "logit P(Y <= j) = theta_j - x'beta (gllmm: alpha_j + x'beta, beta = -beta_R)"),
    software = software,
    estimates = named_list(est),
    se = named_list(se),
    loglik = list(value = as.numeric(logLik(fit)),
                  scale = "individual responses (no multinomial coefficients), as R prints it"),
    n_obs = nobs(fit),
    convergence = list(max_abs_gradient = max(abs(fit$gradient)),
                       warnings = as.list(cf$warnings)),
    elapsed_seconds = cf$elapsed_seconds
  )
  if (!is.null(fit$ST)) {
    out$random_sd <- lapply(fit$ST, function(m) as.numeric(m[1, 1]))
    out$nAGQ <- fit$nAGQ
  }
  out
}

# ------------------------------------------------------------------ wine
data(wine, package = "ordinal")
wine_df <- wine[, c("rating", "temp", "contact", "bottle", "judge", "response")]
write_data(wine_df, "wine")
for (q in c(1, 10)) {
  cf <- capture_fit(clmm(rating ~ temp + contact + (1 | judge), data = wine, nAGQ = q))
  name <- if (q == 1) "wine_clmm_laplace" else "wine_clmm_agq10"
  write_fixture(name, clm_fixture(cf, name,
    sprintf("clmm(rating ~ temp + contact + (1 | judge), data = wine, nAGQ = %d)", q),
    "one row per rating; random judge intercept", "ordinal::clmm"))
}
cf <- capture_fit(clm(rating ~ temp + contact, data = wine))
wine_clm <- clm_fixture(cf, "wine_clm", "clm(rating ~ temp + contact, data = wine)",
                        "no random effect", "ordinal::clm")
ci <- confint(cf$value, level = 0.95, type = "profile")  # profile likelihood intervals of beta
wine_clm$profile_interval <- list(
  level = 0.95, method = "confint(clm, type = 'profile'): profile likelihood",
  lower = named_list(setNames(ci[, 1], rownames(ci))),
  upper = named_list(setNames(ci[, 2], rownames(ci))))
write_fixture("wine_clm", wine_clm)

# ------------------------------------------------------------------ soup
data(soup, package = "ordinal")
soup_df <- soup[, c("RESP", "PROD", "PRODID", "SURENESS", "DAY")]
write_data(soup_df, "soup")
cf <- capture_fit(clmm(SURENESS ~ PROD + (1 | RESP), data = soup, nAGQ = 1))
write_fixture("soup_clmm_laplace", clm_fixture(cf, "soup_clmm_laplace",
  "clmm(SURENESS ~ PROD + (1 | RESP), data = soup)",
  "one row per rating (1847 ratings of 185 respondents); random respondent intercept",
  "ordinal::clmm"))

# ------------------------------------------------------------------ housing (polr)
housing_df <- housing
write_data(housing_df, "housing")
cf <- capture_fit(polr(Sat ~ Infl + Type + Cont, weights = Freq, data = housing, Hess = TRUE))
fit <- cf$value
est <- c(fit$zeta, coef(fit))
V <- vcov(fit)
se <- sqrt(diag(V))[names(est)]
write_fixture("housing_polr", list(
  source = info,
  model = list(name = "housing_polr",
               formula = "polr(Sat ~ Infl + Type + Cont, weights = Freq, data = housing)",
               notes = paste("one row per covariate pattern x satisfaction level, counts as weights;",
                             "factor levels: Sat Low < Medium < High, Infl Low, Medium, High,",
                             "Type Tower, Apartment, Atrium, Terrace, Cont Low, High"),
               sign_convention = "logit P(Y <= j) = zeta_j - x'beta (gllmm: alpha_j + x'beta, beta = -beta_R)"),
  software = "MASS::polr",
  estimates = named_list(est),
  se = named_list(se),
  loglik = list(value = as.numeric(logLik(fit)),
                scale = "individual responses (weights = frequencies), as R prints it"),
  n_obs = sum(housing$Freq),
  convergence = list(code = fit$convergence, warnings = as.list(cf$warnings)),
  elapsed_seconds = cf$elapsed_seconds))

# ------------------------------------------------------------------ pneumo (vglm)
data(pneumo, package = "VGAM")
pneumo_df <- pneumo
write_data(pneumo_df, "pneumo")
cf <- capture_fit(vglm(cbind(normal, mild, severe) ~ log(exposure.time),
                       cumulative(parallel = TRUE), data = pneumo))
fit <- cf$value
Y <- as.matrix(pneumo[, c("normal", "mild", "severe")])
P <- fitted(fit)
individual <- sum(Y * log(P))
coefficient <- sum(lgamma(rowSums(Y) + 1) - rowSums(lgamma(Y + 1)))
write_fixture("pneumo_vglm_cumulative", list(
  source = info,
  model = list(name = "pneumo_vglm_cumulative",
               formula = "vglm(cbind(normal, mild, severe) ~ log(exposure.time), cumulative(parallel = TRUE), data = pneumo)",
               notes = "wide counts, one row per exposure group",
               sign_convention = "logit P(Y <= j) = theta_j + x'beta (VGAM cumulative, reverse = FALSE): as gllmm"),
  software = "VGAM::vglm",
  estimates = named_list(coef(fit)),
  se = named_list(sqrt(diag(vcov(fit)))),
  loglik = list(value = individual,
                scale = "individual responses: sum(y * log(fitted probabilities))",
                vgam_loglik = as.numeric(logLik(fit)),
                multinomial_log_coefficient = coefficient),
  n_obs = sum(Y),
  convergence = list(iterations = fit@iter, warnings = as.list(cf$warnings)),
  elapsed_seconds = cf$elapsed_seconds))

# The other links on the same wide counts (vglm, parallel effects for the ordinal ones):
#   multinomial  log(pi_j / pi_K) = eta_j (gllmm link = "baseline", category-specific slopes)
#   sratio       logit P(Y = j | Y >= j) = eta_j (gllmm "continuation")
#   acat         log(pi_j+1 / pi_j) = eta_j (gllmm "adjacent" writes log(pi_j / pi_j+1): both
#                the intercepts and the slope change sign)
for (fam in c("multinomial", "sratio", "acat")) {
  call <- switch(fam, multinomial = "multinomial()", sratio = "sratio(parallel = TRUE)",
                 acat = "acat(parallel = TRUE)")
  family <- eval(parse(text = call))
  cf <- capture_fit(vglm(cbind(normal, mild, severe) ~ log(exposure.time), family,
                         data = pneumo))
  fit <- cf$value
  P <- fitted(fit)
  name <- paste0("pneumo_vglm_", fam)
  write_fixture(name, list(
    source = info,
    model = list(name = name,
                 formula = sprintf("vglm(cbind(normal, mild, severe) ~ log(exposure.time), %s, data = pneumo)",
                                   call),
                 family = fam),
    software = "VGAM::vglm",
    estimates = named_list(coef(fit)),
    se = named_list(sqrt(diag(vcov(fit)))),
    loglik = list(value = sum(Y * log(P)),
                  scale = "individual responses: sum(y * log(fitted probabilities))",
                  vgam_loglik = as.numeric(logLik(fit))),
    convergence = list(iterations = fit@iter, warnings = as.list(cf$warnings)),
    elapsed_seconds = cf$elapsed_seconds))
}
