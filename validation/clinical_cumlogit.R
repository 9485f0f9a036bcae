# Clinical trial, cumulative-logit mixed models (Hartzel et al. 2001 comparison,
# paper_numbers.md Section 5.2), on subject-level data (272 patients).
#
# ordinal's convention:  logit P(Y <= j) = theta_j - beta x - u_k - b_k x
#   Y ordered much_better < better < unchanged_or_worse, x = 1 drug / 0 placebo.
# The paper's convention logit P(Y <= j) = alpha_j + u_k + b_k x has the opposite sign of
# beta, u and b (correlation unchanged): paper beta = -clmm beta.
#
# Fits:
#   clinical_cumlogit_rs_clmm_laplace      clmm(response ~ x + (1 + x | center))       Laplace
#   clinical_cumlogit_rs_direct_agq10x10   same model, 2-D adaptive GH, 10 x 10 nodes,
#                                          maximised directly here (clmm has no AGQ for
#                                          vector random effects); with 1 node = Laplace as
#                                          a check against clmm
#   clinical_cumlogit_ri_clmm2_agq15       clmm2(response ~ x, random = center, nAGQ = 15)
#   clinical_cumlogit_ri_clmm_laplace      clmm(response ~ x + (1 | center))          Laplace
#   clinical_cumlogit_ri_clmm_agq15        clmm(response ~ x + (1 | center), nAGQ = 15)
# glmmTMB has no cumulative-logit family: not fitted.
#
# Log-likelihood scale: subject-level, sum_i log P(Y_i = y_i | ...) integrated over the
# random effects; no multinomial coefficients (each patient is one multinomial trial). To
# treat each center x treatment row as a multinomial with coefficients, add
# `multinomial_log_coefficient` (recorded in every fixture).

source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])),
                 "common.R"))
load_packages("ordinal")

PKGS <- c("ordinal", "ucminf", "numDeriv", "statmod")
LEVELS <- c("much_better", "better", "unchanged_or_worse")

ct <- read.csv(file.path(DATA_DIR, "clinical_trial.csv"))
ct$response <- factor(ct$response, levels = LEVELS, ordered = TRUE)
ct$x <- as.numeric(ct$treatment == "drug")
ct$center <- factor(ct$center)
long <- ct[rep(seq_len(nrow(ct)), ct$count), c("center", "treatment", "response", "x")]
rownames(long) <- NULL
stopifnot(nrow(long) == sum(ct$count))

# multinomial coefficients of the 16 center x treatment rows
rows <- aggregate(count ~ center + treatment, data = ct, FUN = sum)
mult_coef <- sum(lgamma(rows$count + 1)) - sum(lgamma(ct$count + 1))

# grid of center x treatment x response for conditional predictions
grid <- expand.grid(response = LEVELS, treatment = c("drug", "placebo"),
                    center = levels(ct$center), stringsAsFactors = FALSE)[, 3:1]
grid$x <- as.numeric(grid$treatment == "drug")
grid$count <- ct$count[match(paste(grid$center, grid$treatment, grid$response),
                             paste(ct$center, ct$treatment, ct$response))]
grid$n_row <- rows$count[match(paste(grid$center, grid$treatment),
                               paste(rows$center, rows$treatment))]

# P(Y = j | x, u, b) with eta = beta x + u + b x (ordinal's sign convention)
cat_prob <- function(theta, eta, j) {
  th <- c(-Inf, theta, Inf)
  plogis(th[j + 1] - eta) - plogis(th[j] - eta)
}

predictions <- function(theta, beta, re_int, re_slope) {
  # re_int / re_slope: named by center level
  eta <- beta * grid$x + re_int[grid$center] + re_slope[grid$center] * grid$x
  p <- cat_prob(theta, eta, match(grid$response, LEVELS))
  data.frame(center = as.integer(grid$center), treatment = grid$treatment,
             response = grid$response, count = grid$count, probability = as.numeric(p),
             fitted = as.numeric(p * grid$n_row))
}

model_base <- list(
  family = "cumulative logit (proportional odds), subject-level data",
  response_order = "much_better < better < unchanged_or_worse (Y = 1 is much_better)",
  scores = "x = 1 drug, 0 placebo",
  sign_convention = paste("ordinal: logit P(Y <= j) = theta_j - beta x - u_k - b_k x; the",
                          "paper's (Hartzel et al.) beta = -beta_ordinal (same SE)."),
  data = "src/gllmm/data/clinical_trial.csv expanded to 272 rows with rep(); the same fit",
  data_weights = "is obtained on the 16 x 3 aggregated rows with weights = count",
  loglik_scale = paste("subject-level (no multinomial coefficients); add",
                       "multinomial_log_coefficient for the product-multinomial scale")
)

clmm_summary <- function(cf, label, nm, formula_text, notes) {
  fit <- cf$value
  cfs <- coef(fit)
  V <- vcov(fit)
  se <- sqrt(diag(V))
  vc <- VarCorr(fit)$center
  sds <- attr(vc, "stddev")
  cm <- attr(vc, "correlation")
  re <- ranef(fit)$center
  cv <- condVar(fit)$center
  ranef_out <- lapply(colnames(re), function(tm) {
    list(term = tm, levels = rownames(re), mode = as.numeric(re[[tm]]),
         conditional_sd = as.numeric(sqrt(cv[[tm]])))
  })
  names(ranef_out) <- colnames(re)
  re_int <- setNames(re[["(Intercept)"]], rownames(re))
  re_slope <- if ("x" %in% colnames(re)) setNames(re[["x"]], rownames(re)) else
    setNames(rep(0, nrow(re)), rownames(re))
  theta <- fit$alpha
  beta <- fit$beta[["x"]]
  st_names <- grep("^ST", rownames(V), value = TRUE)
  out <- list(
    source = source_info(PKGS),
    model = c(list(name = nm, formula = formula_text, notes = notes), model_base),
    fit = label,
    software = "ordinal::clmm",
    nAGQ = fit$nAGQ,
    method = if (fit$nAGQ == 1) "Laplace" else sprintf("adaptive Gauss-Hermite, %d nodes", fit$nAGQ),
    estimates = named_list(c(fit$alpha, fit$beta)),
    se = named_list(se[c(names(fit$alpha), names(fit$beta))]),
    se_note = "sqrt(diag(vcov(fit))) (inverse Hessian including the random-effect parameters)",
    estimates_paper_sign = list(x = -beta),
    random_sd = list(center = named_list(sds)),
    random_cor = if (length(sds) > 1) list(center = list(`(Intercept),x` = cm[1, 2])) else NULL,
    random_parameters = list(
      names = st_names, values = as.numeric(fit$optRes$par[length(fit$optRes$par) - length(st_names) + seq_along(st_names)]),
      se = as.numeric(se[st_names]),
      note = if (length(sds) == 1) "ST1 = log(sd)" else
        "ST1 = L11, ST2 = L22, ST3 = L21 of the lower Cholesky factor L (Sigma = L L'), optimised directly"
    ),
    loglik = list(value = as.numeric(logLik(fit)),
                  scale = "subject-level log-likelihood (no multinomial coefficients)",
                  comparable = TRUE),
    multinomial_log_coefficient = mult_coef,
    n_obs = nrow(long),
    convergence = list(max_abs_gradient = max(abs(fit$gradient)),
                       condition_number_hessian = {
                         ev <- eigen(fit$Hessian, only.values = TRUE)$values
                         max(ev) / min(ev)
                       },
                       warnings = as.list(cf$warnings), messages = as.list(cf$messages)),
    elapsed_seconds = cf$elapsed_seconds,
    ranef = list(center = ranef_out),
    ranef_note = "conditional modes (ordinal's sign: added to beta x in eta)",
    fitted = predictions(theta, beta, re_int, re_slope),
    fitted_note = paste("conditional category probabilities P(Y = j | x, modes) per center x treatment,",
                        "and fitted counts = probability * row total"),
    suggested_tolerance = tolerance_for("clmm")
  )
  if (length(sds) > 1) {
    # delta-method SEs of (sd_int, sd_slope, cor) from the Cholesky parameters
    L <- out$random_parameters$values
    Vst <- V[st_names, st_names]
    tr <- function(p) {
      s1 <- abs(p[1]); s2 <- sqrt(p[3]^2 + p[2]^2)
      c(s1, s2, p[1] * p[3] / (s1 * s2))
    }
    J <- numDeriv::jacobian(tr, L)
    se_t <- sqrt(diag(J %*% Vst %*% t(J)))
    out$random_sd_se <- list(center = list(`(Intercept)` = se_t[1], x = se_t[2]))
    out$random_cor_se <- list(center = list(`(Intercept),x` = se_t[3]))
    out$random_sd_se_note <- "delta method from the Cholesky parameters' covariance"
  }
  out
}

# ---------------------------------------------------------------------------------------
# clmm fits
# ---------------------------------------------------------------------------------------
rs_text <- "clmm(response ~ x + (1 + x | center), data = long)"
rs_notes <- "Correlated random intercept and slope by center (unstructured 2 x 2), Laplace."
cf <- capture_fit(clmm(response ~ x + (1 + x | center), data = long))
rs_clmm <- clmm_summary(cf, "clmm_laplace", "clinical_cumlogit_rs_clmm_laplace", rs_text, rs_notes)
write_fixture("clinical_cumlogit_rs_clmm_laplace", rs_clmm)

ri_notes <- "Random center intercept only."
cf <- capture_fit(clmm(response ~ x + (1 | center), data = long))
write_fixture("clinical_cumlogit_ri_clmm_laplace",
              clmm_summary(cf, "clmm_laplace", "clinical_cumlogit_ri_clmm_laplace",
                           "clmm(response ~ x + (1 | center), data = long)", ri_notes))
cf <- capture_fit(clmm(response ~ x + (1 | center), data = long, nAGQ = 15))
write_fixture("clinical_cumlogit_ri_clmm_agq15",
              clmm_summary(cf, "clmm_agq15", "clinical_cumlogit_ri_clmm_agq15",
                           "clmm(response ~ x + (1 | center), data = long, nAGQ = 15)", ri_notes))

# clmm2 (older implementation; random effects on the sd scale, same sign as clmm)
cf <- capture_fit(clmm2(response ~ x, random = center, data = long, nAGQ = 15, Hess = TRUE))
f2 <- cf$value
V2 <- vcov(f2)
se2 <- sqrt(diag(V2))
p2 <- length(f2$coefficients)
re2 <- setNames(as.numeric(f2$ranef), levels(long$center))
clmm2_out <- list(
  source = source_info(PKGS),
  model = c(list(name = "clinical_cumlogit_ri_clmm2_agq15",
                 formula = "clmm2(response ~ x, random = center, data = long, nAGQ = 15, Hess = TRUE)",
                 notes = ri_notes), model_base),
  fit = "clmm2_agq15",
  software = "ordinal::clmm2",
  nAGQ = f2$nAGQ,
  method = "adaptive Gauss-Hermite, 15 nodes",
  estimates = named_list(c(f2$Theta, x = f2$beta[[1]])),
  se = named_list(setNames(se2[1:(p2 - 1)], c(names(f2$Theta), "x"))),
  se_note = "sqrt(diag(vcov(fit))) from the Hessian (Hess = TRUE)",
  estimates_paper_sign = list(x = -f2$beta[[1]]),
  random_sd = list(center = list(`(Intercept)` = as.numeric(f2$stDev))),
  random_parameters = list(names = "log(sd)", values = as.numeric(log(f2$stDev)),
                           se = as.numeric(se2[p2])),
  random_sd_se = list(center = list(`(Intercept)` = as.numeric(f2$stDev * se2[p2]))),
  random_sd_se_note = "delta method: sd * SE(log sd)",
  loglik = list(value = as.numeric(logLik(f2)),
                scale = "subject-level log-likelihood (no multinomial coefficients)",
                comparable = TRUE),
  multinomial_log_coefficient = mult_coef,
  n_obs = nrow(long),
  convergence = list(max_abs_gradient = max(abs(f2$gradient)), code = f2$convergence,
                     warnings = as.list(cf$warnings), messages = as.list(cf$messages)),
  elapsed_seconds = cf$elapsed_seconds,
  ranef = list(center = list(`(Intercept)` = list(term = "(Intercept)", levels = names(re2),
                                                   mode = as.numeric(re2),
                                                   conditional_sd = as.numeric(sqrt(f2$condVar))))),
  ranef_note = "clmm2's ranef (conditional modes, sd scale, same sign as clmm)",
  fitted = predictions(f2$Theta, f2$beta[[1]], re2, setNames(rep(0, 8), names(re2))),
  fitted_note = "conditional category probabilities given the modes, and probability * row total",
  suggested_tolerance = tolerance_for("clmm")
)
write_fixture("clinical_cumlogit_ri_clmm2_agq15", clmm2_out)

# ---------------------------------------------------------------------------------------
# Direct 2-D adaptive Gauss-Hermite for the random intercept + slope model
# ---------------------------------------------------------------------------------------
cells <- grid  # 48 center x treatment x response cells with counts
cells$j <- match(cells$response, LEVELS)
by_center <- split(seq_len(nrow(cells)), cells$center)

# d/d eta and d2/d eta2 of log P(Y = j | eta)
dlogp <- function(theta, eta, j) {
  th <- c(-Inf, theta, Inf)
  A <- plogis(th[j + 1] - eta); C <- plogis(th[j] - eta)
  fA <- A * (1 - A); fC <- C * (1 - C)
  P <- A - C
  g <- -(fA - fC) / P
  h <- ((fA * (1 - 2 * A) - fC * (1 - 2 * C)) * P - (fA - fC)^2) / P^2
  list(logp = log(P), g = g, h = h)
}

unpack <- function(par) {
  theta <- c(par[1], par[1] + exp(par[2]))
  beta <- par[3]
  L <- matrix(c(exp(par[4]), par[5], 0, exp(par[6])), 2, 2)
  list(theta = theta, beta = beta, L = L, Sigma = L %*% t(L))
}

center_loglik <- function(pp, idx, gh2, return_mode = FALSE) {
  y <- cells$count[idx]; xx <- cells$x[idx]; jj <- cells$j[idx]
  Z <- cbind(1, xx)
  Si <- solve(pp$Sigma)
  ldS <- as.numeric(determinant(pp$Sigma)$modulus)
  hfun <- function(v) {
    eta <- pp$beta * xx + Z %*% v
    sum(y * dlogp(pp$theta, eta, jj)$logp) - 0.5 * sum(v * (Si %*% v)) - 0.5 * ldS - log(2 * pi)
  }
  v <- c(0, 0)
  for (it in 1:100) {
    eta <- as.numeric(pp$beta * xx + Z %*% v)
    d <- dlogp(pp$theta, eta, jj)
    g <- as.numeric(crossprod(Z, y * d$g)) - as.numeric(Si %*% v)
    H <- crossprod(Z, Z * (y * d$h)) - Si
    step <- solve(H, g)
    v <- v - step
    if (max(abs(step)) < 1e-12) break
  }
  eta <- as.numeric(pp$beta * xx + Z %*% v)
  d <- dlogp(pp$theta, eta, jj)
  H <- crossprod(Z, Z * (y * d$h)) - Si
  if (return_mode) return(list(mode = v, cov = solve(-H)))
  Ch <- t(chol(solve(-H)))  # lower Cholesky of the posterior curvature covariance
  if (is.null(gh2)) {  # Laplace
    return(hfun(v) + log(2 * pi) + sum(log(diag(Ch))))
  }
  nodes <- gh2$z
  vals <- apply(nodes, 1, function(z) hfun(v + sqrt(2) * as.numeric(Ch %*% z))) +
    rowSums(nodes^2) + gh2$logw
  m <- max(vals)
  m + log(sum(exp(vals - m))) + log(2) + sum(log(diag(Ch)))  # |sqrt(2) Ch| = 2 |Ch|
}

product_rule <- function(k) {
  gh <- statmod::gauss.quad(k, kind = "hermite")
  z <- as.matrix(expand.grid(gh$nodes, gh$nodes))
  lw <- as.matrix(expand.grid(log(gh$weights), log(gh$weights)))
  list(z = z, logw = rowSums(lw))
}

loglik_rs <- function(par, k) {
  pp <- unpack(par)
  gh2 <- if (k == 1) NULL else product_rule(k)
  sum(vapply(by_center, function(idx) center_loglik(pp, idx, gh2), 0))
}

direct_rs <- function(k, start) {
  t0 <- proc.time()[["elapsed"]]
  nll <- function(p) -loglik_rs(p, k)
  opt <- nlminb(start, nll, control = list(eval.max = 5000, iter.max = 2000, rel.tol = 1e-12))
  par <- opt$par
  fval <- opt$objective
  for (it in 1:10) {  # Newton polish
    g <- numDeriv::grad(nll, par)
    H <- numDeriv::hessian(nll, par, method.args = HESS_ARGS)
    step <- solve(H, g)
    cand <- par - step
    if (nll(cand) > fval) break
    par <- cand
    fval <- nll(cand)
    if (max(abs(step)) < 1e-9) break
  }
  g <- numDeriv::grad(nll, par)
  H <- numDeriv::hessian(nll, par, method.args = HESS_ARGS)
  V <- solve(H)
  # transform to (theta1, theta2, beta, sd_int, sd_slope, cor) with delta-method SEs
  tr <- function(p) {
    pp <- unpack(p)
    S <- pp$Sigma
    c(pp$theta, pp$beta, sqrt(S[1, 1]), sqrt(S[2, 2]), S[1, 2] / sqrt(S[1, 1] * S[2, 2]))
  }
  est <- tr(par)
  J <- numDeriv::jacobian(tr, par)
  se <- sqrt(diag(J %*% V %*% t(J)))
  pp <- unpack(par)
  modes <- t(vapply(by_center, function(idx) {
    as.numeric(center_loglik(pp, idx, NULL, return_mode = TRUE)$mode)
  }, c(0, 0)))
  list(est = est, se = se, loglik = -fval, grad = max(abs(g)), par = par,
       modes = modes, elapsed = proc.time()[["elapsed"]] - t0,
       nlminb = opt$message)
}

# start from clmm's Laplace fit
L0 <- rs_clmm$random_parameters$values  # L11, L22, L21
a0 <- unname(unlist(rs_clmm$estimates))
start <- c(a0[1], log(a0[2] - a0[1]), a0[3], log(abs(L0[1])), L0[3] * sign(L0[1]), log(L0[2]))
lap <- direct_rs(1, start)
agq <- direct_rs(10, lap$par)

direct_out <- function(r, k) {
  nm <- if (k == 1) "clinical_cumlogit_rs_direct_laplace" else "clinical_cumlogit_rs_direct_agq10x10"
  names(r$est) <- names(r$se) <- c(LEVELS[1:2] |> paste(collapse = "|"), paste(LEVELS[2:3], collapse = "|"),
                                   "x", "sd_int", "sd_slope", "cor")
  re_int <- setNames(r$modes[, 1], names(by_center))
  re_slope <- setNames(r$modes[, 2], names(by_center))
  list(
    source = source_info(PKGS),
    model = c(list(name = nm, formula = "response ~ x + (1 + x | center), cumulative logit",
                   notes = paste("Independent implementation in validation/clinical_cumlogit.R:",
                                 if (k == 1) "Laplace (check against clmm)." else
                                   "2-D adaptive Gauss-Hermite, 10 x 10 product rule centred at the conditional mode and scaled by the Cholesky factor of the inverse curvature.",
                                 "Parameters optimised: theta1, log(theta2 - theta1), beta,",
                                 "log L11, L21, log L22 (nlminb + Newton polish); SEs from the",
                                 "numerical Hessian, delta method for sd and cor.")),
                 model_base),
    fit = if (k == 1) "direct_laplace" else "direct_agq10x10",
    software = "validation/clinical_cumlogit.R (statmod Gauss-Hermite rule, nlminb, numDeriv)",
    nAGQ = if (k == 1) 1 else "10 x 10",
    method = if (k == 1) "Laplace" else "adaptive Gauss-Hermite, 10 nodes per dimension",
    estimates = named_list(r$est[1:3]),
    se = named_list(r$se[1:3]),
    estimates_paper_sign = list(x = -r$est[["x"]]),
    random_sd = list(center = list(`(Intercept)` = r$est[["sd_int"]], x = r$est[["sd_slope"]])),
    random_sd_se = list(center = list(`(Intercept)` = r$se[["sd_int"]], x = r$se[["sd_slope"]])),
    random_cor = list(center = list(`(Intercept),x` = r$est[["cor"]])),
    random_cor_se = list(center = list(`(Intercept),x` = r$se[["cor"]])),
    loglik = list(value = r$loglik,
                  scale = "subject-level log-likelihood (no multinomial coefficients)",
                  comparable = TRUE),
    multinomial_log_coefficient = mult_coef,
    convergence = list(max_abs_gradient = r$grad, nlminb_message = r$nlminb),
    elapsed_seconds = r$elapsed,
    ranef = list(center = list(
      `(Intercept)` = list(term = "(Intercept)", levels = names(by_center), mode = as.numeric(re_int)),
      x = list(term = "x", levels = names(by_center), mode = as.numeric(re_slope)))),
    ranef_note = "conditional modes (ordinal's sign convention)",
    fitted = predictions(r$est[1:2], r$est[["x"]], re_int, re_slope),
    fitted_note = "conditional category probabilities given the modes, and probability * row total",
    suggested_tolerance = tolerance_for("direct")
  )
}
write_fixture("clinical_cumlogit_rs_direct_laplace", direct_out(lap, 1))
write_fixture("clinical_cumlogit_rs_direct_agq10x10", direct_out(agq, 10))
