# Fits of gam::gam(... lo(...) ...): the loess GAM of Table 2 column (c) (issue 19).
#
# gam's lo() runs its own (pre-2006) loess Fortran: k-d tree + vertex interpolation, the
# nearest-neighbour radius at the floor(n * span)-th point, cell = span / 5. These fixtures pin
# gllmm.smooth.loess_gam to it:
#   loess_gam_fits.json  one record per (data set, family, degree, span): the data, the fitted
#                        means, the additive predictor, df = n - df.residual (trace of the
#                        operator), nl.df, the deviance;
#   loess_gam_mba_path.json  the MBA table over a span grid with deviance, df and AICc, and the
#                        AICc-chosen span's fit (Table 2 column (c)).
# Scores are standardised with scale() (a common factor on both axes leaves loess unchanged).
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE),
                                                     value = TRUE)[1])), "common.R"))
load_packages("gam")

PKGS <- c("gam")
control <- gam.control(epsilon = 1e-12, bf.epsilon = 1e-12, maxit = 100, bf.maxit = 100)

# NULL where gam's loess stops with an error (spans too small for the local fits).
fit_record <- function(label, data, formula, family, span, degree, n_cells) {
  fit <- tryCatch(capture_fit(gam(formula, family = family, data = data, control = control)),
                  error = function(e) NULL)
  if (is.null(fit)) return(NULL)
  m <- fit$value
  list(label = label, family = family$family, span = span, degree = degree,
       fitted = as.numeric(fitted(m)), eta = as.numeric(m$additive.predictors),
       df = n_cells - m$df.residual, nl_df = as.numeric(m$nl.df),
       deviance = m$deviance, aic = m$aic, iterations = length(m$bf.iter),
       warnings = fit$warnings)
}

aicc <- function(dev, df, k) ifelse(k - df - 1 > 0, dev + 2 * df * k / (k - df - 1), Inf)

# --- the MBA table (Section 5.1), 6 x 7, Poisson --------------------------------------------
mba <- read.csv(file.path(DATA_DIR, "mba_statistics_economics.csv"))
mba$x1 <- as.numeric(scale(mba$statistics))
mba$x2 <- as.numeric(scale(mba$economics))
k_mba <- nrow(mba)
mba_data <- list(count = mba$count, x1 = mba$x1, x2 = mba$x2)

records <- list()
add <- function(rec, data) {
  if (!is.null(rec)) records[[length(records) + 1]] <<- c(rec, list(data = data))
}
for (sp in c(0.25, 0.3, 0.36, 0.43, 0.5, 0.6, 0.75, 0.9, 1.0, 1.5)) {
  f <- eval(bquote(count ~ lo(x1, x2, span = .(sp), degree = 1)))
  add(fit_record("mba", mba, f, poisson(), sp, 1, k_mba), mba_data)
}
# Degree 2 is left out: gam 1.22-1's lo(degree = 2) stops with an error in one dimension
# ("names() applied to a non-vector") and aborts R in two.

# --- one dimension: Poisson counts and binomial proportions on 30 points ---------------------
set.seed(20031)
x <- seq(1, 30)
one <- data.frame(x = x, y = rpois(30, exp(1 + sin(x / 5))), m = 8 + (x %% 5))
one$s <- rbinom(30, one$m, plogis(-1 + x / 15))
for (sp in c(0.3, 0.5, 0.8)) {
  for (deg in 1) {
    f <- eval(bquote(y ~ lo(x, span = .(sp), degree = .(deg))))
    add(fit_record("one_poisson", one, f, poisson(), sp, deg, 30),
        list(y = one$y, x = one$x))
    f <- eval(bquote(cbind(s, m - s) ~ lo(x, span = .(sp), degree = .(deg))))
    add(fit_record("one_binomial", one, f, binomial(), sp, deg, 30),
        list(s = one$s, m = one$m, x = one$x))
  }
}

# --- 3 x 3 tables of Table 1 (multinomial, uniform association), every span class ----------
for (b in c(0.4, 1.0)) {
  for (n in c(50, 1000)) {
    s <- 1:3
    logp <- b * outer(s - 2, s - 2)
    p <- exp(logp) / sum(exp(logp))
    y <- as.vector(rmultinom(1, n, as.vector(t(p))))
    tab <- data.frame(r = rep(1:3, each = 3), c = rep(1:3, 3), y = y)
    tab$x1 <- as.numeric(scale(tab$r))
    tab$x2 <- as.numeric(scale(tab$c))
    for (sp in c(0.45, 0.56, 0.67, 0.78, 0.9, 1.0, 1.25, 2.0)) {
      f <- eval(bquote(y ~ lo(x1, x2, span = .(sp), degree = 1)))
      add(fit_record(sprintf("table3x3_b%g_n%d", b, n), tab, f, poisson(), sp, 1, 9),
          list(y = tab$y, x1 = tab$x1, x2 = tab$x2))
    }
  }
}
write_fixture("loess_gam_fits", list(source = source_info(PKGS), control = list(
  epsilon = 1e-12, bf_epsilon = 1e-12), fits = records))

# --- the MBA span path and the AICc choice -------------------------------------------------
spans <- seq(0.1, 1.0, by = 0.01)
path <- lapply(spans, function(sp) {
  f <- eval(bquote(count ~ lo(x1, x2, span = .(sp), degree = 1)))
  m <- tryCatch(suppressWarnings(gam(f, family = poisson(), data = mba, control = control)),
                error = function(e) NULL)
  if (is.null(m)) return(list(span = sp, deviance = NA, df = NA, aicc = NA))
  df <- k_mba - m$df.residual
  list(span = sp, deviance = m$deviance, df = df, aicc = aicc(m$deviance, df, k_mba))
})
crit <- vapply(path, function(r) if (is.na(r$aicc)) Inf else r$aicc, 0)
best <- spans[which.min(crit)]
f <- eval(bquote(count ~ lo(x1, x2, span = .(best), degree = 1)))
chosen <- fit_record("mba_aicc", mba, f, poisson(), best, 1, k_mba)
write_fixture("loess_gam_mba_path", list(source = source_info(PKGS),
                                         criterion = "D + 2 df K / (K - df - 1)",
                                         path = path, best_span = best, chosen = chosen))
