# Inference after the fit on lme4's cbpp data: anova of nested glmer fits and profile
# confidence intervals (Laplace, glmer's default nAGQ = 1).
#
#   m0: cbind(incidence, size - incidence) ~ 1 + (1 | herd)
#   m1: cbind(incidence, size - incidence) ~ period + (1 | herd)
# Records anova(m0, m1) (npar, AIC, BIC, logLik, deviance, Chisq, Df, Pr(>Chisq)),
# confint(m1, method = "profile") and confint(m1, method = "Wald"), and the fits' estimates.
# (lme4's Wald SEs are not the observed information's: 0.3032 against gllmm's 0.3066 for
# period2, whose profile interval, equal in both, implies about 0.308; tests use the profile.)
# Also the conditional modes (ranef) of m1 by herd, and of a nested model on grouseticks
# (TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD), poisson; glmmTMB) by LOCATION and
# BROOD:LOCATION.
# Writes tests/fixtures/r/cbpp_inference.json (the data, tests/fixtures/r/cbpp.csv, are
# written by real_data.R from the same lme4 data set).

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])),
                 "common.R"))
load_packages("lme4")

data(cbpp, package = "lme4")

ctrl <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))
m0 <- glmer(cbind(incidence, size - incidence) ~ 1 + (1 | herd), cbpp, binomial,
            control = ctrl)
m1 <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial,
            control = ctrl)
a <- anova(m0, m1)
# before profiling: profile() leaves the fitted object's modes at the last profiled point
modes <- function(re) as.list(setNames(re[[1]], rownames(re)))
herd_modes <- modes(ranef(m1)$herd)
prof <- confint(m1, method = "profile", level = 0.95)
wald <- confint(m1, method = "Wald", level = 0.95)

rows <- function(ci) lapply(seq_len(nrow(ci)), function(i)
  list(parameter = rownames(ci)[i], lower = ci[i, 1], upper = ci[i, 2]))
fit_info <- function(m) list(
  loglik = as.numeric(logLik(m)), nobs = nobs(m), aic = AIC(m), bic = BIC(m),
  fixef = named_list(fixef(m)), sd_herd = attr(VarCorr(m)$herd, "stddev")[[1]])

# conditional modes labelled by group: cbpp's herds, and grouseticks' nested (1 | LOCATION/BROOD)
gt <- lme4::grouseticks
gt$cHEIGHT <- gt$HEIGHT - mean(gt$HEIGHT)  # as in ?grouseticks
# glmmTMB (Laplace): glmer stops 0.03 below the optimum on these data
load_packages("glmmTMB")
mg <- glmmTMB(TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD), gt, family = poisson)
mg_re <- ranef(mg)$cond

write_fixture("cbpp_inference", list(
  source = source_info(c("lme4", "glmmTMB", "TMB")),
  models = list(m0 = "cbind(incidence, size - incidence) ~ 1 + (1 | herd)",
                m1 = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  method = "glmer, Laplace (nAGQ = 1), bobyqa",
  m0 = fit_info(m0), m1 = fit_info(m1),
  anova = list(npar = a$npar, AIC = a$AIC, BIC = a$BIC, logLik = a$logLik,
               deviance = a$deviance, Chisq = a$Chisq[2], Df = a$Df[2],
               p_value = a[["Pr(>Chisq)"]][2]),
  confint_profile = rows(prof),
  confint_wald = rows(wald),
  ranef_herd = herd_modes,
  grouseticks = list(model = "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD)",
                     loglik = as.numeric(logLik(mg)),
                     fit = "glmmTMB (Laplace)",
                     ranef_location = modes(mg_re$LOCATION),
                     ranef_brood_in_location = modes(mg_re[["BROOD:LOCATION"]]))
))
