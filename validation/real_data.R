# Data sets that ship with R packages, fitted in the idioms R users write (issue 16).
#
# For each model: the data as CSV (tests/fixtures/r/<data>.csv, the project's own copy) and a
# JSON fixture tests/fixtures/r/real_<model>.json with the log-likelihood on the full scale,
# fixed effects and SEs in R's column order, random-effect SDs by grouping, and for cbpp and
# Salamanders predictions on new rows (one of them a new level) with re.form = NA and NULL.
# Mixed models are fitted by glmmTMB (Laplace; its nlminb optimum polished by BFGS, recorded
# as `glmmtmb`, the unpolished one as `glmmtmb_nlminb`) and glmer (Laplace) as a check; GLMs
# by glm. Factors are treatment-coded (ordered factors of MASS Insurance made
# unordered: R would otherwise use polynomial contrasts).
#
#   cbpp          cbind(incidence, size - incidence) ~ period + (1 | herd)          binomial
#   grouseticks   TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD)                    poisson
#   insurance_glm Claims ~ District + Group + Age + offset(log(Holders))           poisson GLM
#   insurance_mm  Claims ~ Group + Age + offset(log(Holders)) + (1 | District)     poisson
#   ucb_loglin    Freq ~ (Admit + Gender + Dept)^2                                 poisson GLM
#   ucb_mm        cbind(Admitted, Rejected) ~ Gender + (1 | Dept)                  binomial
#   ucb_weights   admitted ~ Gender + Dept, weights = Freq (one row per Admit x    binomial GLM
#                 Gender x Dept: frequency weights)
#   epil          y ~ lbase * trt + lage + V4 + (1 | subject)                      poisson
#   salamanders   count ~ spp + mined + (1 | site)                                 poisson
#
# Rerun: Rscript validation/real_data.R

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])),
                 "common.R"))
load_packages("lme4", "glmmTMB", "MASS")
PKGS <- c("lme4", "glmmTMB", "TMB", "MASS")

write_data <- function(df, name) {
  path <- file.path(FIXTURE_DIR, paste0(name, ".csv"))
  write.csv(df, path, row.names = FALSE)
  cat("wrote", path, "\n")
}

sd_list <- function(vc) {
  out <- list()
  for (g in names(vc)) out[[g]] <- as.numeric(attr(vc[[g]], "stddev"))
  out
}

summarise <- function(fit, kind) {
  if (kind == "glm") {
    cf <- summary(fit)$coefficients
    return(list(loglik = as.numeric(logLik(fit)), fixef = named_list(cf[, 1]),
                se = named_list(cf[, 2]), sd = list(), nobs = nobs(fit)))
  }
  if (kind == "glmmtmb") {
    cf <- summary(fit)$coefficients$cond
    return(list(loglik = as.numeric(logLik(fit)), fixef = named_list(cf[, 1]),
                se = named_list(cf[, 2]), sd = sd_list(VarCorr(fit)$cond),
                converged = fit$fit$convergence == 0, nobs = nobs(fit)))
  }
  cf <- summary(fit)$coefficients
  list(loglik = as.numeric(logLik(fit)), fixef = named_list(cf[, 1]),
       se = named_list(cf[, 2]), sd = sd_list(VarCorr(fit)), nobs = nobs(fit))
}

record <- function(name, formula_r, data_name, family, data, newdata = NULL, weights = NULL,
                   gllmm = NULL) {
  fam <- get(family)
  mixed <- !is.null(lme4::findbars(formula_r))
  out <- list(source = source_info(PKGS),
              model = list(name = name, formula = paste(deparse(formula_r), collapse = " "),
                           family = family, data = paste0("tests/fixtures/r/", data_name, ".csv"),
                           gllmm = gllmm))
  if (!mixed) {
    data$.w <- if (is.null(weights)) 1 else weights
    fit <- glm(formula_r, family = fam, data = data, weights = .w)
    out$glm <- summarise(fit, "glm")
  } else {
    tmb0 <- glmmTMB(formula_r, family = fam, data = data)
    # nlminb stops with gradients up to 1e-3 here (estimates off by ~3e-5); BFGS from its
    # optimum polishes it to gradients ~1e-6, the precision the prediction fixtures need
    par0 <- tmb0$fit$par
    tmb <- glmmTMB(formula_r, family = fam, data = data,
                   start = list(beta = fixef(tmb0)$cond, theta = par0[names(par0) == "theta"]),
                   control = glmmTMBControl(optimizer = optim, optArgs = list(method = "BFGS"),
                                            optCtrl = list(reltol = 1e-15, maxit = 2000)))
    out$glmmtmb <- summarise(tmb, "glmmtmb")
    out$glmmtmb$max_abs_gradient <- max(abs(tmb$sdr$gradient.fixed))
    out$glmmtmb_nlminb <- summarise(tmb0, "glmmtmb")
    mer <- glmer(formula_r, family = fam, data = data, nAGQ = 1,
                 control = glmerControl(optimizer = "bobyqa"))
    out$glmer <- summarise(mer, "glmer")
    if (!is.null(newdata)) {
      # glmmTMB 1.1's predict(allow.new.levels = TRUE) fails on these models (subscript out of
      # bounds); a new level is predicted at u = 0, i.e. by re.form = NA, which glmer's
      # allow.new.levels = TRUE confirms (recorded alongside)
      grp <- all.vars(lme4::findbars(formula_r)[[1]][[3]])
      known <- as.character(newdata[[grp]]) %in% as.character(data[[grp]])
      pr <- list(newdata = newdata, new_level = !known)
      for (type in c("link", "response")) {
        fixed <- as.numeric(predict(tmb, newdata, re.form = NA, type = type))
        random <- fixed
        random[known] <- as.numeric(predict(tmb, newdata[known, ], re.form = NULL, type = type))
        pr[[paste0("fixed_", type)]] <- fixed
        pr[[paste0("random_", type)]] <- random
        pr[[paste0("glmer_random_", type)]] <- as.numeric(
          predict(mer, newdata, re.form = NULL, type = type, allow.new.levels = TRUE))
      }
      # the conditional modes of the fitted groups, to predict at R's parameters
      re <- glmmTMB::ranef(tmb)$cond
      pr$modes <- lapply(re, function(df) setNames(as.list(df[[1]]), rownames(df)))
      out$predict <- pr
    }
  }
  write_fixture(paste0("real_", name), out)
}

# ---------------------------------------------------------------- cbpp (lme4)
cbpp_df <- lme4::cbpp
write_data(cbpp_df, "cbpp")
cbpp_new <- data.frame(herd = c("1", "5", "15", "99"),
                       period = factor(c("1", "3", "4", "2"), levels = levels(cbpp_df$period)),
                       size = c(14, 10, 20, 12), incidence = c(0, 0, 0, 0))
record("cbpp", cbind(incidence, size - incidence) ~ period + (1 | herd), "cbpp", "binomial",
       cbpp_df, newdata = cbpp_new,
       gllmm = "cbind(incidence, size - incidence) ~ factor(period) + (1 | herd)")

# ---------------------------------------------------------------- grouseticks (lme4)
gt <- lme4::grouseticks
gt$cHEIGHT <- gt$HEIGHT - mean(gt$HEIGHT)  # as in ?grouseticks
write_data(gt, "grouseticks")
record("grouseticks", TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD), "grouseticks", "poisson",
       gt, gllmm = "TICKS ~ factor(YEAR) + cHEIGHT + (1 | LOCATION/BROOD)")

# ---------------------------------------------------------------- Insurance (MASS)
ins <- MASS::Insurance
write_data(ins, "insurance")
ins$Group <- factor(ins$Group, ordered = FALSE)
ins$Age <- factor(ins$Age, ordered = FALSE)
record("insurance_glm", Claims ~ District + Group + Age + offset(log(Holders)), "insurance",
       "poisson", ins,
       gllmm = "Claims ~ factor(District) + Group + Age + offset(log(Holders))")
record("insurance_mm", Claims ~ Group + Age + offset(log(Holders)) + (1 | District), "insurance",
       "poisson", ins, gllmm = "Claims ~ Group + Age + offset(log(Holders)) + (1 | District)")

# ---------------------------------------------------------------- UCBAdmissions (datasets)
ucb <- as.data.frame(UCBAdmissions)
ucb$admitted <- as.numeric(ucb$Admit == "Admitted")
write_data(ucb, "ucb_admissions")
record("ucb_loglin", Freq ~ (Admit + Gender + Dept)^2, "ucb_admissions", "poisson", ucb,
       gllmm = "Freq ~ (Admit + Gender + Dept)^2")
ucb_wide <- reshape(ucb[, 1:4], idvar = c("Gender", "Dept"), timevar = "Admit", direction = "wide")
names(ucb_wide) <- sub("^Freq\\.", "", names(ucb_wide))
rownames(ucb_wide) <- NULL
write_data(ucb_wide, "ucb_wide")
record("ucb_mm", cbind(Admitted, Rejected) ~ Gender + (1 | Dept), "ucb_wide", "binomial",
       ucb_wide, gllmm = "cbind(Admitted, Rejected) ~ Gender + (1 | Dept)")
record("ucb_weights", admitted ~ Gender + Dept, "ucb_admissions", "binomial", ucb,
       weights = ucb$Freq,
       gllmm = "cbind(admitted, 1 - admitted) ~ Gender + Dept, weights Freq")

# ---------------------------------------------------------------- epil (MASS)
ep <- MASS::epil
write_data(ep, "epil")
record("epil", y ~ lbase * trt + lage + V4 + (1 | subject), "epil", "poisson", ep,
       gllmm = "y ~ lbase * trt + lage + V4 + (1 | subject)")

# ---------------------------------------------------------------- Salamanders (glmmTMB)
sal <- glmmTMB::Salamanders
sal_csv <- sal
sal_csv$site <- as.character(sal_csv$site)
write_data(sal_csv, "salamanders")
sal$site <- factor(as.character(sal$site))  # unordered: the grouping needs no order
sal_new <- data.frame(site = c("R-1", "VF-1", "R-5", "NEW-1"),
                      spp = factor(c("GP", "DM", "EC-L", "PR"), levels = levels(sal$spp)),
                      mined = factor(c("yes", "no", "yes", "no"), levels = levels(sal$mined)),
                      count = 0)
record("salamanders", count ~ spp + mined + (1 | site), "salamanders", "poisson", sal,
       newdata = sal_new, gllmm = "count ~ spp + mined + (1 | site)")
