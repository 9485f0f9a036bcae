# MBA statistics x economics table (Coull & Agresti 2003, Section 5.1), models (2.5), (2.6).
#
#   (2.5) count ~ factor(statistics) + factor(economics) + (1 | cell)
#   (2.6) count ~ factor(statistics) + factor(economics) + I(statistics * economics) + (1 | cell)
# Poisson, one N(0, sigma^2) effect per cell, scores = category numbers.
# Fits: glmer Laplace (nAGQ = 1), glmer AGQ (nAGQ = 15), glmmTMB (Laplace); plus the Poisson
# GLMs (sigma = 0) and the LR statistic for beta = 0.
# Writes tests/fixtures/r/mba_<model>_<fit>.json and mba_lr_test.json.

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])),
                 "common.R"))
load_packages("lme4", "glmmTMB")

PKGS <- c("lme4", "glmmTMB", "TMB", "statmod")
N_AGQ <- 15

mba <- read.csv(file.path(DATA_DIR, "mba_statistics_economics.csv"))
mba$cell <- factor(seq_len(nrow(mba)))
keys <- mba[, c("statistics", "economics", "count")]

models <- list(
  mba_2_5 = list(
    formula = count ~ factor(statistics) + factor(economics) + (1 | cell),
    glm_formula = count ~ factor(statistics) + factor(economics),
    text = "count ~ factor(statistics) + factor(economics) + (1 | cell)",
    notes = paste("Model (2.5): independence base + cell-wise random effect u_ij ~ N(0, sigma^2).",
                  "Poisson, log link. cell = per-row id (42 cells, 6 statistics levels 2..7",
                  "x 7 economics levels 1..7, n = 55). Treatment contrasts (R default).")
  ),
  mba_2_6 = list(
    formula = count ~ factor(statistics) + factor(economics) + I(statistics * economics) + (1 | cell),
    glm_formula = count ~ factor(statistics) + factor(economics) + I(statistics * economics),
    text = "count ~ factor(statistics) + factor(economics) + I(statistics * economics) + (1 | cell)",
    notes = paste("Model (2.6): linear-by-linear (uniform association) base with scores = category",
                  "numbers + cell-wise random effect. The ML estimate of sigma is 0 (boundary): the",
                  "fit equals the Poisson GLM. Whatever R reports at the boundary (singular fit,",
                  "convergence warnings) is recorded under convergence.")
  )
)

results <- list()
for (nm in names(models)) {
  m <- models[[nm]]
  model_info <- list(name = nm, formula = m$text, family = "poisson(link = 'log')",
                     notes = m$notes, data = "src/gllmm/data/mba_statistics_economics.csv",
                     scores = "statistics 2..7, economics 1..7 (category numbers)")

  glm_fit <- glm(m$glm_formula, family = poisson, data = mba)

  fits <- glmm_fits(m$formula, poisson, mba, N_AGQ)
  for (fn in names(fits)) {
    # (with the 15-node AGQ log-likelihood at the Laplace estimates too, for reference)
    s <- scalar_fit_summary(fits[[fn]], fn, keys, mba$count, rep(1, nrow(mba)), mba$cell,
                            c("cell", "(Intercept)"), N_AGQ)
    out <- c(list(source = source_info(PKGS), model = model_info), s)
    out$poisson_glm_sigma0 <- list(
      estimates = named_list(coef(glm_fit)),
      se = named_list(sqrt(diag(vcov(glm_fit)))),
      loglik = as.numeric(logLik(glm_fit)),
      note = "glm(poisson) without the random effect (sigma = 0); full log-likelihood"
    )
    write_fixture(paste0(nm, "_", fn), out)
    results[[nm]][[fn]] <- s
  }

  # Independent check: maximise the full-scale 15-node AGQ log-likelihood directly,
  # starting from glmer's nAGQ = 15 estimates.
  g15 <- fits$glmer_nagq15$value
  X <- getME(g15, "X")
  d <- direct_agq_fit(X, mba$count, rep(1, nrow(mba)), mba$cell, fixef(g15),
                      results[[nm]]$glmer_nagq15$random_sd$cell[["(Intercept)"]], N_AGQ,
                      group_name = "cell")
  u <- d$ranef$mode[match(as.character(mba$cell), d$ranef$levels)]
  fitted_direct <- as.numeric(exp(X %*% unlist(d$estimates) + u))
  d$fitted <- cbind(keys, fitted = fitted_direct)
  d$fitted_note <- "exp(X beta + u_mode): posterior-mode fitted counts (paper's Table 2 (a)/(b))"
  t2 <- read.csv(file.path(PAPER_DIR, "table2_fitted.csv"))
  col <- if (nm == "mba_2_5") "cellwise_independence" else "cellwise_linear_by_linear"
  t2 <- t2[match(paste(mba$statistics, mba$economics), paste(t2$statistics, t2$economics)), ]
  d$comparison_with_paper_table2 <- list(
    column = col, max_abs_difference = max(abs(fitted_direct - t2[[col]])),
    note = "printed values have 2 decimals"
  )
  out <- c(list(source = source_info(c(PKGS, "numDeriv")), model = model_info), d)
  write_fixture(paste0(nm, "_direct_agq15"), out)
  results[[nm]]$direct_agq15 <- d

  # Same for the Laplace approximation (1 node): a tightly converged Laplace optimum to
  # judge glmer's (convergence warning on (2.5)) and glmmTMB's Laplace fits against.
  tmb <- fits$glmmtmb$value
  dl <- direct_agq_fit(X, mba$count, rep(1, nrow(mba)), mba$cell, fixef(tmb)$cond,
                       max(results[[nm]]$glmmtmb$random_sd$cell[["(Intercept)"]], 0.05), 1,
                       group_name = "cell")
  out <- c(list(source = source_info(c(PKGS, "numDeriv")), model = model_info), dl)
  write_fixture(paste0(nm, "_direct_laplace"), out)
  results[[nm]]$direct_laplace <- dl
}

# LR statistic for beta = 0, (2.5) vs (2.6), both with cell-wise random effects.
ll <- function(model, fit) {
  s <- results[[model]][[fit]]
  s$loglik_full_recomputed$value
}
lr <- list(
  source = source_info(PKGS),
  model = list(name = "mba_lr_test",
               formula = "LR = 2 * (loglik(2.6) - loglik(2.5)), both with (1 | cell)",
               notes = "Paper prints 13.2; reference reproduction 13.239 (AGQ 15 nodes)."),
  lr_agq15_full_scale = 2 * (ll("mba_2_6", "glmer_nagq15") - ll("mba_2_5", "glmer_nagq15")),
  lr_agq15_note = "recomputed full-scale 15-node AGQ log-likelihoods at glmer nAGQ=15 estimates",
  lr_direct_agq15 = 2 * (results$mba_2_6$direct_agq15$loglik$value -
                           results$mba_2_5$direct_agq15$loglik$value),
  lr_direct_agq15_note = "15-node AGQ log-likelihoods maximised directly (mba_*_direct_agq15.json)",
  lr_glmer_laplace = 2 * (results$mba_2_6$glmer_nagq1$loglik$value -
                            results$mba_2_5$glmer_nagq1$loglik$value),
  lr_glmmtmb_laplace = 2 * (results$mba_2_6$glmmtmb$loglik$value -
                              results$mba_2_5$glmmtmb$loglik$value),
  loglik = list(
    mba_2_5_agq15 = ll("mba_2_5", "glmer_nagq15"),
    mba_2_6_agq15 = ll("mba_2_6", "glmer_nagq15"),
    mba_2_5_direct_agq15 = results$mba_2_5$direct_agq15$loglik$value,
    mba_2_6_direct_agq15 = results$mba_2_6$direct_agq15$loglik$value,
    mba_2_5_glmer_laplace = results$mba_2_5$glmer_nagq1$loglik$value,
    mba_2_6_glmer_laplace = results$mba_2_6$glmer_nagq1$loglik$value,
    mba_2_5_glmmtmb = results$mba_2_5$glmmtmb$loglik$value,
    mba_2_6_glmmtmb = results$mba_2_6$glmmtmb$loglik$value,
    scale = "full log-likelihood (with -log y!)"
  )
)
write_fixture("mba_lr_test", lr)
