# Clinical trial, 8 centers x 2 treatments x 3 responses (Coull & Agresti 2003, Section 5.2).
#
# (a) Local odds-ratio GLLMM (paper_numbers.md Section 5.2), Poisson log-linear:
#       count ~ factor(center)*treatment + factor(center)*response + x:s + (0 + xs | center)
#     centred scores x = +1/2 drug, -1/2 placebo; s = 1, 0, -1 for much_better, better,
#     unchanged_or_worse; xs = x*s. The center-specific local log odds ratio is beta + b_k.
#     Reference ML (AGQ 15): beta 0.5923 (0.2408), sigma 0.3438 (0.3633), loglik -86.7884.
# (b) The same model with uncentred scores x = 1/0, s = 3/2/1 (paper: sigma -> 0, beta 0.645).
# (c) Binary-logit GLMM for cross-checking: much_better vs not, by center x treatment,
#       cbind(much_better, n - much_better) ~ x + (1 | center),  x = 1 drug / 0 placebo.
# Fits: glmer nAGQ = 1, glmer nAGQ = 15, glmmTMB (Laplace), and direct maximisation of the
# full-scale 15-node AGQ log-likelihood (validation/common.R) as an independent check.

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])),
                 "common.R"))
load_packages("lme4", "glmmTMB")

PKGS <- c("lme4", "glmmTMB", "TMB", "statmod", "numDeriv")
N_AGQ <- 15

ct <- read.csv(file.path(DATA_DIR, "clinical_trial.csv"))
ct$treatment <- factor(ct$treatment, levels = c("drug", "placebo"))
ct$response <- factor(ct$response, levels = c("much_better", "better", "unchanged_or_worse"))
ct$center <- factor(ct$center)
# centred scores
ct$x <- ifelse(ct$treatment == "drug", 0.5, -0.5)
ct$s <- c(much_better = 1, better = 0, unchanged_or_worse = -1)[as.character(ct$response)]
ct$xs <- ct$x * ct$s
# uncentred scores
ct$x1 <- ifelse(ct$treatment == "drug", 1, 0)
ct$s1 <- c(much_better = 3, better = 2, unchanged_or_worse = 1)[as.character(ct$response)]
ct$xs1 <- ct$x1 * ct$s1
keys <- data.frame(center = as.integer(as.character(ct$center)),
                   treatment = as.character(ct$treatment),
                   response = as.character(ct$response), count = ct$count)

table4 <- read.csv(file.path(PAPER_DIR, "table4_center_log_or.csv"))
table5 <- read.csv(file.path(PAPER_DIR, "table5_predicted_counts.csv"))

# ---------------------------------------------------------------------------------------
# Poisson local odds-ratio models
# ---------------------------------------------------------------------------------------
poisson_models <- list(
  clinical_local_or_centred = list(
    formula = count ~ factor(center) * treatment + factor(center) * response + x:s + (0 + xs | center),
    text = "count ~ factor(center)*treatment + factor(center)*response + x:s + (0 + xs | center)",
    slope = "xs", coef = "x:s",
    scores = "x = +1/2 drug, -1/2 placebo; s = 1 much_better, 0 better, -1 unchanged_or_worse; xs = x*s",
    notes = paste("Local odds-ratio GLLMM (5.1) as a Poisson log-linear model: fixed center x",
                  "treatment and center x response margins, random slope b_k ~ N(0, sigma^2) on xs",
                  "by center; center-specific local log OR = beta + b_k (positive = drug better).",
                  "Treatment contrasts; treatment levels drug (reference), placebo; response",
                  "levels much_better (reference), better, unchanged_or_worse.")
  ),
  clinical_local_or_uncentred = list(
    formula = count ~ factor(center) * treatment + factor(center) * response + x1:s1 + (0 + xs1 | center),
    text = "count ~ factor(center)*treatment + factor(center)*response + x1:s1 + (0 + xs1 | center)",
    slope = "xs1", coef = "x1:s1",
    scores = "x1 = 1 drug, 0 placebo; s1 = 3 much_better, 2 better, 1 unchanged_or_worse; xs1 = x1*s1",
    notes = paste("Same model with uncentred scores. Under Poisson sampling the random slope on",
                  "x*s also moves the margins, so the fit is not invariant to shifting the scores;",
                  "paper_numbers.md: ML sigma = 0, beta 0.645.")
  )
)

results <- list()
for (nm in names(poisson_models)) {
  m <- poisson_models[[nm]]
  model_info <- list(name = nm, formula = m$text, family = "poisson(link = 'log')",
                     scores = m$scores, notes = m$notes,
                     data = "src/gllmm/data/clinical_trial.csv",
                     random_slope_variable = m$slope, association_coefficient = m$coef)
  z <- ct[[m$slope]]
  fits <- glmm_fits(m$formula, poisson, ct, N_AGQ)
  for (fn in names(fits)) {
    s <- scalar_fit_summary(fits[[fn]], fn, keys, ct$count, z, ct$center,
                            c("center", m$slope), N_AGQ)
    b <- s$ranef$center[[m$slope]]
    s$center_log_or <- list(center = b$levels, value = s$estimates[[m$coef]] + b$mode,
                            note = "beta + b_k (conditional mode): center-specific local log odds ratio")
    write_fixture(paste0(nm, "_", fn), c(list(source = source_info(PKGS), model = model_info), s))
    results[[nm]][[fn]] <- s
  }

  # Independent check: direct maximisation of the full-scale AGQ (15 nodes) log-likelihood.
  g15 <- fits$glmer_nagq15$value
  X <- getME(g15, "X")
  d <- direct_agq_fit(X, ct$count, z, ct$center, fixef(g15),
                      max(results[[nm]]$glmer_nagq15$random_sd$center[[m$slope]], 0.05), N_AGQ,
                      group_name = "center", term_name = m$slope)
  u <- d$ranef$mode[match(as.character(ct$center), d$ranef$levels)]
  fitted_direct <- as.numeric(exp(X %*% unlist(d$estimates) + z * u))
  d$fitted <- cbind(keys, fitted = fitted_direct)
  d$fitted_note <- "exp(X beta + xs * b_mode): posterior-mode fitted counts (paper's Table 5, local model)"
  d$center_log_or <- list(center = d$ranef$levels, value = d$estimates[[m$coef]] + d$ranef$mode,
                          note = "beta + b_k (conditional mode)")
  # LR for sigma = 0 against the Poisson GLM with the same fixed effects
  glm_fit <- glm(nobars(m$formula),
                 family = poisson, data = ct)
  d$poisson_glm_sigma0 <- list(estimate = coef(glm_fit)[[m$coef]],
                               se = sqrt(vcov(glm_fit)[m$coef, m$coef]),
                               loglik = as.numeric(logLik(glm_fit)))
  d$lr_sigma0 <- 2 * (d$loglik$value - as.numeric(logLik(glm_fit)))
  if (nm == "clinical_local_or_centred") {
    t5 <- table5[match(paste(keys$center, keys$treatment, keys$response),
                       paste(table5$center, table5$treatment, table5$response)), ]
    d$comparison_with_paper <- list(
      table4_random_local_max_abs_difference =
        max(abs(d$center_log_or$value - table4$random_local[match(d$ranef$levels, table4$center)])),
      table5_local_model_max_abs_difference = max(abs(fitted_direct - t5$local_model)),
      table5_cells_within_0.05 = sum(abs(fitted_direct - t5$local_model) <= 0.05 + 1e-9),
      note = "printed values have 2 (Table 4) or 1 (Table 5) decimals"
    )
  }
  write_fixture(paste0(nm, "_direct_agq15"),
                c(list(source = source_info(PKGS), model = model_info), d))
  results[[nm]]$direct_agq15 <- d

  # Tightly converged Laplace optimum, to judge glmer's / glmmTMB's Laplace fits against.
  tmb <- fits$glmmtmb$value
  dl <- direct_agq_fit(X, ct$count, z, ct$center, fixef(tmb)$cond,
                       max(results[[nm]]$glmmtmb$random_sd$center[[m$slope]], 0.05), 1,
                       group_name = "center", term_name = m$slope)
  dl$center_log_or <- list(center = dl$ranef$levels, value = dl$estimates[[m$coef]] + dl$ranef$mode,
                           note = "beta + b_k (conditional mode)")
  write_fixture(paste0(nm, "_direct_laplace"),
                c(list(source = source_info(PKGS), model = model_info), dl))
}

# ---------------------------------------------------------------------------------------
# Binary logit GLMM (cross-check): much_better vs not
# ---------------------------------------------------------------------------------------
bin <- aggregate(count ~ center + treatment, data = ct, FUN = sum)
names(bin)[names(bin) == "count"] <- "n"
mb <- aggregate(count ~ center + treatment, data = ct[ct$response == "much_better", ], FUN = sum)
bin$much_better <- mb$count[match(paste(bin$center, bin$treatment), paste(mb$center, mb$treatment))]
bin$other <- bin$n - bin$much_better
bin$x <- ifelse(bin$treatment == "drug", 1, 0)
bin <- bin[order(bin$center, bin$treatment), ]
rownames(bin) <- NULL
bkeys <- data.frame(center = as.integer(as.character(bin$center)),
                    treatment = as.character(bin$treatment),
                    much_better = bin$much_better, n = bin$n)
bform <- cbind(much_better, other) ~ x + (1 | center)
model_info <- list(
  name = "clinical_binary_logit",
  formula = "cbind(much_better, n - much_better) ~ x + (1 | center), binomial(logit)",
  family = "binomial(link = 'logit')",
  scores = "x = 1 drug, 0 placebo",
  notes = paste("Cross-check GLMM: response collapsed to much_better vs (better or",
                "unchanged_or_worse), aggregated by center x treatment (16 binomials),",
                "random center intercept. fitted = conditional probability of much_better."),
  data = "src/gllmm/data/clinical_trial.csv (collapsed)"
)
bfits <- glmm_fits(bform, binomial, bin, N_AGQ)
for (fn in names(bfits)) {
  s <- scalar_fit_summary(bfits[[fn]], fn, bkeys, bin$much_better, rep(1, nrow(bin)),
                          bin$center, c("center", "(Intercept)"), N_AGQ, "binomial", bin$n)
  s$fitted_note <- "fitted(fit): conditional probability of much_better, plogis(X beta + u_mode)"
  write_fixture(paste0("clinical_binary_logit_", fn),
                c(list(source = source_info(PKGS), model = model_info), s))
  results$binary[[fn]] <- s
}
g15 <- bfits$glmer_nagq15$value
X <- getME(g15, "X")
d <- direct_agq_fit(X, bin$much_better, rep(1, nrow(bin)), bin$center, fixef(g15),
                    results$binary$glmer_nagq15$random_sd$center[["(Intercept)"]], N_AGQ,
                    family = "binomial", size = bin$n, group_name = "center")
u <- d$ranef$mode[match(as.character(bin$center), d$ranef$levels)]
d$fitted <- cbind(bkeys, fitted = as.numeric(plogis(X %*% unlist(d$estimates) + u)))
d$fitted_note <- "plogis(X beta + u_mode): conditional probability of much_better"
write_fixture("clinical_binary_logit_direct_agq15",
              c(list(source = source_info(PKGS), model = model_info), d))
