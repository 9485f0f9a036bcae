# Peer fits of the cell-wise smoothing model (2.6) for benchmarks/smoothing.py.
#
#   log mu_ij = alpha + r_i + c_j + beta x_ij + u_ij,  u_ij ~ N(0, sigma^2),  x_ij = s_i t_j
#
# Usage: Rscript smoothing_peers.R <data.csv> <glmmTMB|glmer> <out.json>
# The CSV has columns row, col, count, x (one line per cell). Prints nothing; writes one JSON
# object: fit seconds and CPU seconds (library loading and reading excluded), the Laplace
# log-likelihood (full scale, as logLik() reports it for nAGQ = 1), sigma, beta, convergence.
args <- commandArgs(trailingOnly = TRUE)
stopifnot(length(args) == 3)
program <- args[2]
suppressMessages({
  library(Matrix)
  if (program == "glmmTMB") library(glmmTMB) else library(lme4)
})
d <- read.csv(args[1])
d$row <- factor(d$row)
d$col <- factor(d$col)
d$cell <- factor(seq_len(nrow(d)))
f <- count ~ row + col + x + (1 | cell)
t0 <- proc.time()
elapsed <- function() (proc.time() - t0)[["elapsed"]]
cpu <- function() sum((proc.time() - t0)[c("user.self", "sys.self")])
if (program == "glmmTMB") {
  # sparse fixed-effects design: a dense one is cells x (I + J) doubles
  m <- glmmTMB(f, family = poisson, data = d, sparseX = c(cond = TRUE),
               control = glmmTMBControl(parallel = 1))
  seconds <- elapsed()
  cpu_seconds <- cpu()
  sigma <- sqrt(VarCorr(m)$cond$cell[1])
  beta <- fixef(m)$cond[["x"]]
  converged <- isTRUE(m$fit$convergence == 0) && isTRUE(m$sdr$pdHess)
} else if (program == "glmer") {
  m <- glmer(f, family = poisson, data = d, nAGQ = 1)
  seconds <- elapsed()
  cpu_seconds <- cpu()
  sigma <- sqrt(VarCorr(m)$cell[1])
  beta <- fixef(m)[["x"]]
  converged <- length(m@optinfo$conv$lme4$messages) == 0
} else {
  stop("unknown program ", program)
}
loglik <- as.numeric(logLik(m))
cat(sprintf(
  '{"seconds": %.6f, "cpu": %.6f, "loglik": %.10f, "sigma": %.10f, "beta": %.10f, "converged": %s}\n',
  seconds, cpu_seconds, loglik, sigma, beta, tolower(as.character(converged))
), file = args[3])
