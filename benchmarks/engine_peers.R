# R peers of the gllmm engine benchmark (run by benchmarks/engine.py; not meant to be run alone).
#
#   Rscript benchmarks/engine_peers.R DATADIR OUT.json MODELS MIN_REPS TARGET_SEC MAX_REPS SLOW
#
# Reads DATADIR/mba.csv and DATADIR/clinical.csv (written by engine.py), fits every model the
# R packages can fit, and writes one JSON record per (model, method, tool):
#   glmer   (lme4):    nAGQ = 1 (Laplace) and nAGQ = Q (AGQ) - scalar random effects only
#   glmmTMB:           Laplace only
#   clmm / clmm2 (ordinal), on the expanded individual data and on the grouped table with
#   weights = count ("-w"): Laplace, and nAGQ = Q for one random intercept.
# Timing: one warm-up fit, then repeated fits until MIN_REPS fits and TARGET_SEC seconds are
# done (at most MAX_REPS); the median is reported. A fit whose warm-up takes more than SLOW
# seconds is timed by that single run. Log-likelihoods are on the full scale; glmer's
# nAGQ > 1 value is on another scale (lme4 issues #161, #567), so it is recomputed on the full
# scale at glmer's estimates (outside the timing) with the adaptive Gauss-Hermite rule below.

suppressPackageStartupMessages({
  library(jsonlite)
  library(lme4)
  library(glmmTMB)
  library(ordinal)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 7) stop("usage: engine_peers.R DATADIR OUT MODELS MIN_REPS TARGET MAX_REPS SLOW")
datadir <- args[1]
outfile <- args[2]
models <- strsplit(args[3], ",")[[1]]
min_reps <- as.integer(args[4])
target <- as.numeric(args[5])
max_reps <- as.integer(args[6])
slow_limit <- as.numeric(args[7])  # "inf" parses as Inf

now <- function() as.numeric(Sys.time())
cpu <- function() {
  p <- proc.time()
  p[["user.self"]] + p[["sys.self"]]
}
short <- function(s, n = 110) {
  s <- gsub("\\s+", " ", s)
  if (nchar(s) > n) paste0(substr(s, 1, n - 3), "...") else s
}

time_fits <- function(fit_once) {
  warns <- character(0)
  t0 <- now()
  c0 <- cpu()
  res <- withCallingHandlers(fit_once(),
    warning = function(w) {
      warns <<- c(warns, short(conditionMessage(w)))
      invokeRestart("muffleWarning")
    },
    message = function(m) {
      warns <<- c(warns, short(trimws(conditionMessage(m))))
      invokeRestart("muffleMessage")
    })
  warm <- now() - t0
  warm_cpu <- cpu() - c0
  if (warm > slow_limit) {
    return(list(res = res, times = warm, cpu_times = warm_cpu, warmup_only = TRUE,
                warnings = unique(warns)))
  }
  times <- numeric(0)
  cpu_times <- numeric(0)
  start <- now()
  while (length(times) < max_reps && (length(times) < min_reps || now() - start < target)) {
    t0 <- now()
    c0 <- cpu()
    res <- suppressWarnings(suppressMessages(fit_once()))
    times <- c(times, now() - t0)
    cpu_times <- c(cpu_times, cpu() - c0)
  }
  list(res = res, times = times, cpu_times = cpu_times, warmup_only = FALSE,
       warnings = unique(warns))
}

# Full-scale adaptive Gauss-Hermite log-likelihood of a Poisson GLMM with one scalar random
# effect per group: eta = eta0 + z * u_g, u_g ~ N(0, sigma^2).
agq_loglik_poisson <- function(y, eta0, z, group, sigma, n_nodes) {
  if (sigma <= 0) return(sum(dpois(y, exp(eta0), log = TRUE)))
  gh <- statmod::gauss.quad(n_nodes, kind = "hermite")
  total <- 0
  for (g in unique(group)) {
    i <- which(group == g)
    h <- function(u) sum(dpois(y[i], exp(eta0[i] + z[i] * u), log = TRUE)) +
      dnorm(u, 0, sigma, log = TRUE)
    u <- 0
    for (it in 1:100) {
      mu <- exp(eta0[i] + z[i] * u)
      g1 <- sum(z[i] * (y[i] - mu)) - u / sigma^2
      h2 <- -sum(z[i]^2 * mu) - 1 / sigma^2
      step <- g1 / h2
      u <- u - step
      if (abs(step) < 1e-12 * (1 + abs(u))) break
    }
    s <- 1 / sqrt(sum(z[i]^2 * exp(eta0[i] + z[i] * u)) + 1 / sigma^2)
    nodes <- u + sqrt(2) * s * gh$nodes
    v <- vapply(nodes, h, 0) + gh$nodes^2 + log(gh$weights) + log(sqrt(2) * s)
    m <- max(v)
    total <- total + m + log(sum(exp(v - m)))
  }
  total
}

# --------------------------------------------------------------------------- data
mba <- read.csv(file.path(datadir, "mba.csv"))
mba$cell <- factor(mba$cell)
ct <- read.csv(file.path(datadir, "clinical.csv"))
ct$center <- factor(ct$center)
ct$treatment <- factor(ct$treatment, levels = c("drug", "placebo"))
ct$response <- factor(ct$response, levels = c("much_better", "better", "unchanged_or_worse"),
                      ordered = TRUE)
ind <- ct[rep(seq_len(nrow(ct)), ct$count), ]  # one row per subject
grp <- ct[ct$count > 0, ]                        # grouped table, weights = count
crossed <- read.csv(file.path(datadir, "crossed.csv"))
crossed$a <- factor(crossed$a)
crossed$b <- factor(crossed$b)

NODES <- c(mba_2.5 = 15, mba_2.6 = 15, clinical_local = 15, clinical_global = 15,
           cumlogit_2re = 10, cumlogit_1re = 15, crossed = 1)
POISSON <- list(
  "mba_2.5" = list(data = mba, key = NA,
                   f = count ~ factor(statistics) + factor(economics) + (1 | cell)),
  "mba_2.6" = list(data = mba, key = "I(statistics * economics)",
                   f = count ~ factor(statistics) + factor(economics) +
                     I(statistics * economics) + (1 | cell)),
  "clinical_local" = list(data = ct, key = "xs",
                          f = count ~ factor(center) * treatment + factor(center) * response +
                            xs + (0 + xs | center)),
  "crossed" = list(data = crossed, key = "x", f = count ~ x + (1 | a) + (1 | b))
)
LAPLACE_ONLY <- c(crossed = "crossed random effects: Laplace only (a 50-dimensional integral)")

records <- list()
add <- function(model, method, tool, status = "ok", tf = NULL, estimate = NULL, sd = NULL,
                loglik = NULL, loglik_note = NULL, converged = NULL) {
  r <- list(model = model, method = method, tool = tool, status = status)
  if (!is.null(tf)) {
    r$seconds <- median(tf$times)
    r$cpu_seconds <- median(tf$cpu_times)
    r$cpu_times <- as.list(tf$cpu_times)
    r$n_reps <- length(tf$times)
    r$times <- as.list(tf$times)
    r$warmup_only <- tf$warmup_only
    r$warnings <- as.list(tf$warnings)
  }
  r$estimate <- estimate
  r$sd <- sd
  r$loglik <- loglik
  r$loglik_note <- loglik_note
  r$converged <- converged
  records[[length(records) + 1]] <<- r
}
fmt_sd <- function(v) paste(sprintf("%.4f", v), collapse = "/")
na <- function(model, tool, reason, methods = c("agq", "laplace")) {
  for (m in methods) add(model, m, tool, status = sprintf("n/a (%s)", reason))
}
try_fit <- function(model, method, tool, fit_once, extract) {
  tf <- tryCatch(time_fits(fit_once), error = function(e) e)
  if (inherits(tf, "error")) {
    add(model, method, tool, status = sprintf("error (%s)", short(conditionMessage(tf), 80)))
    return(invisible())
  }
  ex <- extract(tf$res)
  do.call(add, c(list(model = model, method = method, tool = tool, tf = tf), ex))
}

# --------------------------------------------------------------------------- Poisson models
for (model in intersect(names(POISSON), models)) {
  spec <- POISSON[[model]]
  q <- NODES[[model]]
  ext_glmer <- function(fit) {
    sd <- as.numeric(unlist(lapply(VarCorr(fit), function(m) attr(m, "stddev"))))
    est <- if (is.na(spec$key)) sd[1] else unname(fixef(fit)[spec$key])
    nagq <- fit@devcomp$dims[["nAGQ"]]
    ll <- as.numeric(logLik(fit))
    note <- NULL
    if (nagq > 1) {
      eta0 <- as.numeric(getME(fit, "X") %*% fixef(fit))
      Z <- getME(fit, "Z")
      z <- as.numeric(Matrix::rowSums(Z))
      g <- getME(fit, "flist")[[1]]
      note <- sprintf("lme4 prints %.4f", ll)
      ll <- agq_loglik_poisson(spec$data$count, eta0, z, g, sd[1], nagq)
    }
    conv <- is.null(fit@optinfo$conv$lme4$messages) && fit@optinfo$conv$opt == 0
    list(estimate = est, sd = fmt_sd(sd), loglik = ll, loglik_note = note, converged = conv)
  }
  if (model %in% names(LAPLACE_ONLY)) {
    add(model, "agq", "glmer", status = sprintf("n/a (%s)", LAPLACE_ONLY[[model]]))
  } else {
    try_fit(model, "agq", "glmer",
            function() glmer(spec$f, family = poisson, data = spec$data, nAGQ = q), ext_glmer)
  }
  try_fit(model, "laplace", "glmer",
          function() glmer(spec$f, family = poisson, data = spec$data, nAGQ = 1), ext_glmer)
  add(model, "agq", "glmmTMB", status = "n/a (Laplace only; see the Laplace row)")
  try_fit(model, "laplace", "glmmTMB",
          function() glmmTMB(spec$f, family = poisson, data = spec$data),
          function(fit) {
            sd <- as.numeric(unlist(lapply(VarCorr(fit)$cond, function(m) attr(m, "stddev"))))
            est <- if (is.na(spec$key)) sd[1] else unname(fixef(fit)$cond[spec$key])
            list(estimate = est, sd = fmt_sd(sd), loglik = as.numeric(logLik(fit)),
                 converged = fit$fit$convergence == 0 && isTRUE(fit$sdr$pdHess))
          })
}

if ("clinical_global" %in% models) {
  for (tool in c("glmer", "glmmTMB")) na("clinical_global", tool, "no Dale global odds-ratio likelihood")
}

# --------------------------------------------------------------------------- ordinal models
ext_clmm <- function(fit) {
  sd <- as.numeric(unlist(lapply(VarCorr(fit), function(m) attr(m, "stddev"))))
  list(estimate = -unname(coef(fit)["x"]), sd = fmt_sd(sd), loglik = as.numeric(logLik(fit)))
}
ext_clmm2 <- function(fit) {
  list(estimate = -unname(fit$beta["x"]), sd = fmt_sd(fit$stDev),
       loglik = as.numeric(logLik(fit)))
}
for (model in intersect(c("cumlogit_2re", "cumlogit_1re"), models)) {
  q <- NODES[[model]]
  for (tool in c("glmer", "glmmTMB")) na(model, tool, "no cumulative-logit (ordinal) family")
  if (model == "cumlogit_2re") {
    f <- response ~ x + (1 + x | center)
    for (tool in c("clmm", "clmm-w"))
      add(model, "agq", tool, status = "n/a (clmm: AGQ only for one random intercept; Laplace row)")
    try_fit(model, "laplace", "clmm", function() clmm(f, data = ind), ext_clmm)
    try_fit(model, "laplace", "clmm-w", function() clmm(f, data = grp, weights = count), ext_clmm)
    na(model, "clmm2", "clmm2: one random intercept only")
    na(model, "clmm2-w", "clmm2: one random intercept only")
  } else {
    f <- response ~ x + (1 | center)
    try_fit(model, "agq", "clmm", function() clmm(f, data = ind, nAGQ = q), ext_clmm)
    try_fit(model, "agq", "clmm-w", function() clmm(f, data = grp, weights = count, nAGQ = q),
            ext_clmm)
    try_fit(model, "laplace", "clmm", function() clmm(f, data = ind), ext_clmm)
    try_fit(model, "laplace", "clmm-w", function() clmm(f, data = grp, weights = count), ext_clmm)
    try_fit(model, "agq", "clmm2",
            function() clmm2(response ~ x, random = center, data = ind, nAGQ = q, Hess = TRUE),
            ext_clmm2)
    try_fit(model, "agq", "clmm2-w",
            function() clmm2(response ~ x, random = center, data = grp, weights = count,
                             nAGQ = q, Hess = TRUE), ext_clmm2)
    try_fit(model, "laplace", "clmm2",
            function() clmm2(response ~ x, random = center, data = ind, Hess = TRUE), ext_clmm2)
    try_fit(model, "laplace", "clmm2-w",
            function() clmm2(response ~ x, random = center, data = grp, weights = count,
                             Hess = TRUE), ext_clmm2)
  }
}

vers <- vapply(c("lme4", "glmmTMB", "ordinal", "TMB", "Matrix"),
               function(p) as.character(packageVersion(p)), "")
add("_meta", "", "R", status = paste0(sub("R version ", "R ", R.version.string), "; ",
                                      paste(names(vers), vers, collapse = ", ")))
writeLines(toJSON(records, auto_unbox = TRUE, null = "null", digits = NA), outfile)
