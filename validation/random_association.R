# Three-way cell-wise model with random stratum associations (Coull & Agresti 2003, Sec. 2.2):
#
#   log mu_ijk = theta_ik + phi_jk + beta_k x_ij + u_ijk,
#   beta_k ~ N(beta, sigma_b^2), u_ijk ~ N(0, sigma^2),
#
# per-stratum row and column effects fixed. Fitted by glmer and glmmTMB (Laplace) on the two
# generated tables of tests/fixtures/r/random_association.csv (written by
# tests/smooth/test_cellwise.py (_table_a and _stratified(1, 0.3))) with integer scores
# x = s_i t_j, s = row, t = col (1..n, gllmm smooth's default) and with centred scores:
#   count ~ 0 + rk + ck + x + (1 | cell) + (0 + x | stratum)
# (rk, ck: row and column within stratum; one column of ck per stratum is aliased and dropped).
# Writes tests/fixtures/r/random_association_<table>_<scores>_<fit>.json.

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])),
                 "common.R"))
load_packages("lme4", "glmmTMB")

PKGS <- c("lme4", "glmmTMB", "TMB")
all_dat <- read.csv(file.path(FIXTURE_DIR, "random_association.csv"))
for (tab in unique(all_dat$table)) {
  dat <- all_dat[all_dat$table == tab, ]
  dat$rk <- factor(paste(dat$stratum, dat$row))
  dat$ck <- factor(paste(dat$stratum, dat$col))
  dat$stratum <- factor(dat$stratum)
  dat$cell <- factor(seq_len(nrow(dat)))
  keys <- data.frame(row = dat$row, col = dat$col, stratum = dat$stratum)
  for (scores in c("integer", "centred")) {
    s <- if (scores == "integer") dat$row else dat$row - mean(unique(dat$row))
    t <- if (scores == "integer") dat$col else dat$col - mean(unique(dat$col))
    dat$x <- s * t
    f <- count ~ 0 + rk + ck + x + (1 | cell) + (0 + x | stratum)
    info <- list(name = paste("random_association", tab, scores), formula = deparse(f),
                 family = "poisson(link = 'log')",
                 data = sprintf("tests/fixtures/r/random_association.csv, table %s", tab),
                 scores = scores)
    fits <- list(
      glmmtmb = capture_fit(glmmTMB(f, family = poisson, data = dat)),
      glmer_nagq1 = capture_fit(glmer(f, family = poisson, data = dat, nAGQ = 1,
                                      control = glmerControl(optimizer = "bobyqa")))
    )
    for (fn in names(fits)) {
      sm <- fit_summary(fits[[fn]], fn, keys)
      sm$ranef <- NULL
      sm$fitted <- NULL
      sm$estimates <- sm$estimates[grep("^x$|^cond.x$", names(sm$estimates))]
      sm$se <- sm$se[grep("^x$|^cond.x$", names(sm$se))]
      write_fixture(paste0("random_association_", tab, "_", scores, "_", fn),
                    c(list(source = source_info(PKGS), model = info), sm))
    }
  }
}
