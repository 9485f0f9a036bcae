# Reference fits for designs built from a gllmm Table (issue 15, "Tables feed the spec"):
# a 3 x 3 table with one structural zero is modelled on its 8 other cells, the table's scores
# enter formulas by name, and its strata fix the totals (product-multinomial sampling).
#
# Writes tests/fixtures/r/table_designs.json with, per model, glm's coefficients (R's
# treatment contrasts), the log-likelihood and the fitted values of the modelled cells:
#   quasi_independence   count ~ row + col on the 8 cells (cell (a, z) a structural zero);
#   linear_by_linear     count ~ row + col + u:v with row scores u = (1, 2, 4) and column
#                        scores v = (0, 1, 3), same 8 cells;
#   product_multinomial  the full 3 x 3 table with the row totals fixed (strata = row):
#                        count ~ row + col + u:v; the column effects and the association are
#                        the multinomial ML estimates (Birch 1963: the Poisson fit with the
#                        row effects reproduces the row totals), the log-likelihood is the
#                        product-multinomial one, sum_i log dmultinom(y_i., mu_i. / n_i);
#   cellwise_glmmtmb     count ~ row + col + (1 | cell) on the 8 cells, glmmTMB Laplace.
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])),
                 "common.R"))

rows <- c("a", "b", "c")
cols <- c("x", "y", "z")
counts <- matrix(c(25, 14, 0,
                   12, 30, 18,
                   7, 16, 28), 3, 3, byrow = TRUE)
u <- c(1, 2, 4)
v <- c(0, 1, 3)
d <- expand.grid(col = cols, row = rows, stringsAsFactors = FALSE)[, c("row", "col")]
d$count <- as.vector(t(counts))  # row-major, as a gllmm Table orders its cells
d$u <- u[match(d$row, rows)]
d$v <- v[match(d$col, cols)]
structural <- d$row == "a" & d$col == "z"

glm_summary <- function(fit, keep) {
  list(estimates = named_list(coef(fit)),
       se = named_list(sqrt(diag(vcov(fit)))),
       loglik = as.numeric(logLik(fit)),
       n_cells = sum(keep),
       fitted = as.numeric(fitted(fit)),
       cells = paste(d$row[keep], d$col[keep], sep = ":"))
}

m8 <- d[!structural, ]
qi <- glm(count ~ row + col, family = poisson, data = m8, control = glm.control(epsilon = 1e-12, maxit = 100))
lxl <- glm(count ~ row + col + u:v, family = poisson, data = m8, control = glm.control(epsilon = 1e-12, maxit = 100))

full <- d
full$count[structural] <- 9  # the product-multinomial table has no structural zero
pm <- glm(count ~ row + col + u:v, family = poisson, data = full, control = glm.control(epsilon = 1e-12, maxit = 100))
mu <- matrix(fitted(pm), 3, 3, byrow = TRUE)
y <- matrix(full$count, 3, 3, byrow = TRUE)
pm_loglik <- sum(vapply(1:3, function(i) dmultinom(y[i, ], prob = mu[i, ] / sum(mu[i, ]),
                                                   log = TRUE), 0))
pm_out <- glm_summary(pm, rep(TRUE, 9))
pm_out$loglik_poisson <- pm_out$loglik
pm_out$loglik <- pm_loglik
pm_out$counts <- full$count
pm_out$fitted_row_totals <- as.numeric(rowSums(mu))

m8$cell <- factor(paste(m8$row, m8$col, sep = ":"))
tmb <- glmmTMB::glmmTMB(count ~ row + col + (1 | cell), family = poisson, data = m8)
tmb_out <- list(estimates = named_list(glmmTMB::fixef(tmb)$cond),
                sd = as.numeric(attr(glmmTMB::VarCorr(tmb)$cond$cell, "stddev")),
                loglik = as.numeric(logLik(tmb)), n_cells = nrow(m8),
                max_abs_gradient = max(abs(tmb$sdr$gradient.fixed)))

write_fixture("table_designs", list(
  source = source_info(c("glmmTMB", "TMB")),
  model = list(rows = rows, cols = cols, counts = d$count, structural_zero = "row a, col z",
               row_scores = u, col_scores = v, cell_order = "row-major (col fastest)"),
  quasi_independence = glm_summary(qi, !structural),
  linear_by_linear = glm_summary(lxl, !structural),
  product_multinomial = pm_out,
  cellwise_glmmtmb = tmb_out,
  suggested_tolerance = list(estimates_abs = 1e-6, loglik_abs = 1e-8,
                             note = "glm's IRLS converges to |delta deviance| < 1e-8 relative")
))
