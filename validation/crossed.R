# Crossed and nested random intercepts: the sparse joint Laplace path of gllmm.
#
# Generation (set.seed(7), in this order), rows i = 1..600:
#   a   <- sample(1:30, 600, TRUE)      level of factor a (30 levels)
#   b   <- sample(1:20, 600, TRUE)      level of factor b (20 levels), crossed with a
#   x   <- round(rnorm(600), 3)         a covariate
#   ua  <- rnorm(30, 0, 0.5); ub <- rnorm(20, 0, 0.4)
#   count ~ rpois(600, exp(0.3 + 0.5 x + ua[a] + ub[b]))
#   n = 5 trials per row: succ ~ rbinom(600, 5, plogis(-0.2 + 0.5 x + ua[a] + ub[b]))
# Fitted models (Laplace, glmmTMB and glmer nAGQ = 1):
#   crossed_poisson:  count ~ x + (1 | a) + (1 | b)
#   crossed_binomial: cbind(succ, 5 - succ) ~ x + (1 | a) + (1 | b)
#   nested_poisson:   count ~ x + (1 | a) + (1 | a:b)
# Writes tests/fixtures/r/crossed.csv and <model>_<fit>.json.

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])),
                 "common.R"))
load_packages("lme4", "glmmTMB")

PKGS <- c("lme4", "glmmTMB", "TMB")
set.seed(7)
n <- 600
a <- sample(1:30, n, TRUE)
b <- sample(1:20, n, TRUE)
x <- round(rnorm(n), 3)
ua <- rnorm(30, 0, 0.5)
ub <- rnorm(20, 0, 0.4)
count <- rpois(n, exp(0.3 + 0.5 * x + ua[a] + ub[b]))
succ <- rbinom(n, 5, plogis(-0.2 + 0.5 * x + ua[a] + ub[b]))
dat <- data.frame(a = a, b = b, x = x, count = count, succ = succ, fail = 5 - succ)
csv_path <- file.path(FIXTURE_DIR, "crossed.csv")
write.csv(dat, csv_path, row.names = FALSE)
cat("wrote", csv_path, "\n")
dat$a <- factor(dat$a)
dat$b <- factor(dat$b)

models <- list(
  crossed_poisson = list(formula = count ~ x + (1 | a) + (1 | b), family = poisson),
  crossed_binomial = list(formula = cbind(succ, fail) ~ x + (1 | a) + (1 | b),
                          family = binomial),
  nested_poisson = list(formula = count ~ x + (1 | a) + (1 | a:b), family = poisson)
)
keys <- data.frame(row = seq_len(n))
for (mn in names(models)) {
  m <- models[[mn]]
  info <- list(name = mn, formula = deparse(m$formula),
               family = paste0(m$family()$family, "(link = '", m$family()$link, "')"),
               data = "tests/fixtures/r/crossed.csv (a, b, x, count, succ, fail)",
               notes = "Crossed / nested random intercepts on generated data; see generation.")
  fits <- list(
    glmmtmb = capture_fit(glmmTMB(m$formula, family = m$family, data = dat)),
    glmer_nagq1 = capture_fit(glmer(m$formula, family = m$family, data = dat, nAGQ = 1,
                                    control = glmerControl(optimizer = "bobyqa")))
  )
  for (fn in names(fits)) {
    s <- fit_summary(fits[[fn]], fn, keys)
    s$ranef <- NULL  # large and not tested
    s$fitted <- NULL
    write_fixture(paste0(mn, "_", fn),
                  c(list(source = source_info(PKGS), model = info), s))
  }
}
