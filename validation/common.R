# Shared helpers for the R validation scripts of gllmm.
#
# Sourced by every validation/*.R script. Provides:
#   - paths (repo root, data directory, fixture directory), `load_packages`,
#   - provenance (`source_info`): script, R and package versions, date,
#   - `capture_fit`: evaluates a fitting call, keeps warnings/messages and elapsed time,
#   - extractors turning glmer / glmmTMB / clmm / clmm2 fits into plain named lists,
#   - `glmm_fits` (glmer Laplace and AGQ, glmmTMB), `fit_summary`, `fixed_predictor` and
#     `scalar_fit_summary` (a summary with the recomputed log-likelihoods): the fit loops,
#   - `agq_loglik_scalar`: an independent adaptive Gauss-Hermite log-likelihood for
#     models with ONE scalar random effect per group (cell-wise and by-center slope
#     models), on the full scale (with -log y! / log choose(n, y) constants). It is used
#     to (a) put glmer's nAGQ > 1 fits on the full log-likelihood scale and (b) check that
#     glmer's and glmmTMB's Laplace log-likelihoods are on that scale (1 node = Laplace).
#   - `direct_agq_fit` / `direct_cellwise_fit`: direct ML of that log-likelihood (Laplace or
#     AGQ), Newton-polished, as tightly converged references (glmer stops at |grad| ~ 1e-3).
#   - `tolerance_for`: suggested test tolerances per fit type.
#   - `write_fixture`: JSON writer (jsonlite, 15 significant digits).

suppressPackageStartupMessages({
  library(jsonlite)
})

# Attach the fitting packages a script uses, without their start-up messages.
load_packages <- function(...) {
  for (p in c(...)) suppressPackageStartupMessages(library(p, character.only = TRUE))
}

script_path <- function() {
  args <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", args[grep("^--file=", args)])
  if (length(f) == 0) stop("run the validation scripts with Rscript")
  normalizePath(f[1])
}

VALIDATION_DIR <- dirname(script_path())
REPO_ROOT <- normalizePath(file.path(VALIDATION_DIR, ".."))
# The repository's own copies: the package data and the paper's tables under tests/fixtures.
DATA_DIR <- file.path(REPO_ROOT, "src", "gllmm", "data")
PAPER_DIR <- file.path(REPO_ROOT, "tests", "fixtures", "paper")
FIXTURE_DIR <- file.path(REPO_ROOT, "tests", "fixtures", "r")
dir.create(FIXTURE_DIR, showWarnings = FALSE, recursive = TRUE)

pkg_version <- function(p) {
  tryCatch(as.character(packageVersion(p)), error = function(e) NA_character_)
}

source_info <- function(packages) {
  pk <- c(packages, "Matrix", "jsonlite")
  list(
    script = file.path("validation", basename(script_path())),
    r_version = R.version.string,
    packages = as.list(setNames(vapply(pk, pkg_version, ""), pk)),
    platform = R.version$platform,
    os = utils::sessionInfo()$running,
    blas = tryCatch(utils::sessionInfo()$BLAS, error = function(e) NA_character_),
    date = format(Sys.time(), "%Y-%m-%dT%H:%M:%S%z"),
    rerun = "bash validation/run_all.sh  (or: Rscript validation/<script>.R)"
  )
}

# Evaluate `expr`, returning the value, all warnings and messages raised while fitting,
# and the elapsed wall-clock time in seconds.
capture_fit <- function(expr) {
  warns <- character(0)
  msgs <- character(0)
  t0 <- proc.time()[["elapsed"]]
  value <- withCallingHandlers(
    expr,
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
    },
    message = function(m) {
      msgs <<- c(msgs, trimws(conditionMessage(m)))
      invokeRestart("muffleMessage")
    }
  )
  list(value = value, warnings = unique(warns), messages = unique(msgs),
       elapsed_seconds = proc.time()[["elapsed"]] - t0)
}

named_list <- function(x) as.list(setNames(as.numeric(x), names(x)))

# Suggested test tolerances per fit type, from the spread observed between these fits and
# the tightly converged direct_* fits of the same approximation (see validation/README.md).
tolerance_for <- function(kind) {
  tol <- switch(kind,
    glmer = list(estimates_abs = 1e-2, se_rel = 1e-2, random_sd_abs = 5e-3, loglik_abs = 2e-4,
                 note = paste("glmer stops at max|grad| ~ 1e-3 to 1e-2 (warnings recorded): its",
                              "fixed effects were up to 5e-3 (nuisance terms; 1e-4 for the",
                              "association coefficient) and its SDs up to 2e-3 from the direct",
                              "optimum; use the direct_* / glmmTMB fixtures for tight checks.",
                              "SEs are lme4's approximation.")),
    glmmTMB = list(estimates_abs = 1e-4, se_rel = 1e-3, random_sd_abs = 1e-4, loglik_abs = 1e-6,
                   note = paste("glmmTMB matched the direct Laplace optimum to < 1e-5 here (an SD",
                                "at the boundary is reported as ~1e-5 instead of 0).")),
    clmm = list(estimates_abs = 1e-4, se_rel = 1e-3, random_sd_abs = 1e-3, loglik_abs = 1e-6,
                note = "clmm stops at max|grad| ~ 2e-5."),
    direct = list(estimates_abs = 1e-6, se_rel = 1e-4, random_sd_abs = 1e-6, loglik_abs = 1e-8,
                  note = paste("Newton-polished optimum (max|grad| < 1e-7); SEs from a numerical",
                               "Hessian (relative accuracy ~1e-5).")),
    stop("unknown tolerance kind ", kind))
  tol
}

# ---------------------------------------------------------------------------------------
# Independent AGQ log-likelihood for one scalar random effect per group.
#   eta_i = offset_i + z_i * u_g(i),  u_g ~ N(0, sigma^2), groups independent.
#   log L = sum_g log \int prod_{i in g} f(y_i | eta_i) phi(u; 0, sigma^2) du
# Adaptive Gauss-Hermite (Liu & Pierce 1994): centred at the conditional mode u_hat_g,
# scaled by the curvature there; n_nodes = 1 is the Laplace approximation.
# family: "poisson" (y counts) or "binomial" (y successes, size trials; logit link).
# ---------------------------------------------------------------------------------------
scalar_logf <- function(y, eta, family, size) {
  if (family == "poisson") dpois(y, exp(eta), log = TRUE) else dbinom(y, size, plogis(eta), log = TRUE)
}

# Conditional mode of u for one group (Newton on the concave log posterior) and the
# curvature-based scale s = (-h''(u_hat))^(-1/2).
scalar_mode <- function(y, offset, z, sigma, family = "poisson", size = NULL) {
  u <- 0
  for (it in 1:200) {
    eta <- offset + z * u
    if (family == "poisson") {
      mu <- exp(eta)
      g1 <- sum(z * (y - mu)) - u / sigma^2
      h2 <- -sum(z^2 * mu) - 1 / sigma^2
    } else {
      p <- plogis(eta)
      g1 <- sum(z * (y - size * p)) - u / sigma^2
      h2 <- -sum(z^2 * size * p * (1 - p)) - 1 / sigma^2
    }
    step <- g1 / h2
    u <- u - step
    if (abs(step) < 1e-13 * (1 + abs(u))) break
  }
  list(mode = u, scale = 1 / sqrt(-h2))
}

agq_loglik_scalar <- function(y, offset, z, group, sigma, n_nodes = 15,
                              family = c("poisson", "binomial"), size = NULL) {
  family <- match.arg(family)
  if (sigma <= 0) {
    return(sum(scalar_logf(y, offset, family, size)))
  }
  gh <- statmod::gauss.quad(n_nodes, kind = "hermite")  # weight exp(-x^2)
  total <- 0
  for (g in unique(group)) {
    idx <- which(group == g)
    sz <- if (is.null(size)) NULL else size[idx]
    h <- function(u) {
      sum(scalar_logf(y[idx], offset[idx] + z[idx] * u, family, sz)) + dnorm(u, 0, sigma, log = TRUE)
    }
    md <- scalar_mode(y[idx], offset[idx], z[idx], sigma, family, sz)
    u <- md$mode
    s <- md$scale
    if (n_nodes == 1) {
      total <- total + h(u) + 0.5 * log(2 * pi) + log(s)
    } else {
      nodes <- u + sqrt(2) * s * gh$nodes
      vals <- vapply(nodes, h, 0) + gh$nodes^2 + log(gh$weights) + log(sqrt(2) * s)
      m <- max(vals)
      total <- total + m + log(sum(exp(vals - m)))
    }
  }
  total
}

# Conditional modes for all groups (0 when sigma = 0).
scalar_modes <- function(y, offset, z, group, sigma, family = "poisson", size = NULL) {
  lv <- unique(group)
  modes <- vapply(lv, function(g) {
    if (sigma <= 0) return(0)
    idx <- which(group == g)
    scalar_mode(y[idx], offset[idx], z[idx], sigma, family,
                if (is.null(size)) NULL else size[idx])$mode
  }, 0)
  list(levels = as.character(lv), mode = as.numeric(modes))
}

# Direct maximisation of agq_loglik_scalar over (beta, sigma): an independent check of
# the optimum that glmer's nAGQ > 1 fit reports (its optimizer stops at max|grad| ~ 1e-3).
# sigma is optimised on [0, Inf) so the boundary sigma = 0 is reachable; SEs come from the
# numerical Hessian (numDeriv) in (beta, log sigma), sigma's by the delta method, and are
# omitted for sigma when the optimum is on the boundary.
# numDeriv's default Hessian step (d = 0.1, relative) is too coarse for intercepts near -11:
# d = 0.01 reproduces the analytic GLM information to 1e-8 on the MBA table.
HESS_ARGS <- list(eps = 1e-4, d = 0.01, zero.tol = sqrt(.Machine$double.eps / 7e-7), r = 4, v = 2)

direct_agq_fit <- function(X, y, z, group, beta_start, sigma_start, n_nodes = 15,
                           family = "poisson", size = NULL, group_name = "group",
                           term_name = "(Intercept)") {
  p <- ncol(X)
  nll <- function(par) {
    -agq_loglik_scalar(y, as.numeric(X %*% par[1:p]), z, group, par[p + 1], n_nodes, family, size)
  }
  t0 <- proc.time()[["elapsed"]]
  opt <- nlminb(c(beta_start, max(sigma_start, 0.05)), nll,
                lower = c(rep(-Inf, p), 0),
                control = list(eval.max = 5000, iter.max = 2000, rel.tol = 1e-12))
  boundary <- opt$par[p + 1] < 1e-6
  # Newton polish with numerical derivatives (nlminb alone stops at |grad| ~ 1e-4).
  nll_log <- function(par) nll(c(par[1:p], exp(par[p + 1])))
  f_pol <- if (boundary) function(b) nll(c(b, 0)) else nll_log
  par <- if (boundary) opt$par[1:p] else c(opt$par[1:p], log(opt$par[p + 1]))
  fval <- f_pol(par)
  for (it in 1:10) {
    grad <- numDeriv::grad(f_pol, par)
    H <- numDeriv::hessian(f_pol, par, method.args = HESS_ARGS)
    step <- solve(H, grad)
    lam <- 1
    repeat {
      cand <- par - lam * step
      fc <- f_pol(cand)
      if (is.finite(fc) && fc <= fval) break
      lam <- lam / 2
      if (lam < 1e-4) break
    }
    if (lam < 1e-4) break
    par <- cand
    fval <- fc
    if (max(abs(step)) < 1e-9) break
  }
  grad <- numDeriv::grad(f_pol, par)
  H <- numDeriv::hessian(f_pol, par, method.args = HESS_ARGS)
  V <- solve(H)
  beta <- par[1:p]
  se_beta <- sqrt(diag(V))[1:p]
  if (!boundary) {
    sigma <- exp(par[p + 1])
    se_logsigma <- sqrt(V[p + 1, p + 1])
  } else {
    sigma <- 0
    se_logsigma <- NA
  }
  opt$objective <- fval
  names(beta) <- names(se_beta) <- colnames(X)
  list(
    fit = sprintf("direct_agq%d", n_nodes),
    software = "validation/common.R direct_agq_fit (nlminb + numDeriv, statmod Gauss-Hermite rule)",
    nAGQ = n_nodes,
    method = sprintf("adaptive Gauss-Hermite, %d nodes, maximised directly", n_nodes),
    estimates = named_list(beta),
    se = named_list(se_beta),
    se_note = "inverse numerical Hessian of the AGQ log-likelihood in (beta, log sigma)",
    random_sd = setNames(list(setNames(list(sigma), term_name)), group_name),
    random_sd_se = if (boundary) NULL else
      setNames(list(setNames(list(sigma * se_logsigma), term_name)), group_name),
    random_sd_se_note = "delta method: sigma * SE(log sigma)",
    boundary = boundary,
    loglik = list(value = -opt$objective,
                  scale = "full log-likelihood (with -log y! / log choose(n,y)), AGQ",
                  comparable = TRUE),
    convergence = list(nlminb_code = opt$convergence, nlminb_message = opt$message,
                       newton_polish = "up to 10 Newton steps with numDeriv gradient/Hessian",
                       max_abs_gradient = max(abs(grad)),
                       gradient_parametrisation = if (boundary) "beta (sigma fixed at 0)" else "(beta, log sigma)"),
    elapsed_seconds = proc.time()[["elapsed"]] - t0,
    ranef = scalar_modes(y, as.numeric(X %*% beta), z, group, sigma, family, size),
    ranef_note = "conditional modes (empirical Bayes posterior modes) at these estimates",
    suggested_tolerance = tolerance_for("direct")
  )
}

# ---------------------------------------------------------------------------------------
# Extractors
# ---------------------------------------------------------------------------------------
# Conditional modes and sds per grouping factor and term, from lme4's or glmmTMB's ranef
# (condVar = TRUE; the variances are the attribute `var_attr` of each factor's data frame).
ranef_lists <- function(re, var_attr) {
  out <- list()
  for (g in names(re)) {
    df <- re[[g]]
    pv <- attr(df, var_attr)
    terms <- colnames(df)
    out[[g]] <- lapply(seq_along(terms), function(j) {
      csd <- tryCatch(as.numeric(sqrt(pv[j, j, ])), error = function(e) NULL)
      list(term = terms[j], levels = rownames(df), mode = as.numeric(df[[j]]),
           conditional_sd = csd)
    })
    names(out[[g]]) <- terms
  }
  out
}

lme4_ranef <- function(fit) ranef_lists(lme4::ranef(fit, condVar = TRUE), "postVar")

# Random-effect sds and correlations per grouping factor, from lme4's or glmmTMB's VarCorr.
varcorr_lists <- function(vc) {
  sd_out <- list()
  cor_out <- list()
  for (g in names(vc)) {
    sd_out[[g]] <- named_list(attr(vc[[g]], "stddev"))
    cm <- attr(vc[[g]], "correlation")
    if (!is.null(cm) && nrow(cm) > 1) {
      nm <- rownames(cm)
      for (a in 1:(nrow(cm) - 1)) for (b in (a + 1):nrow(cm)) {
        cor_out[[g]][[paste(nm[a], nm[b], sep = ",")]] <- cm[a, b]
      }
    }
  }
  list(sd = sd_out, cor = if (length(cor_out)) cor_out else NULL)
}

lme4_varcorr <- function(fit) varcorr_lists(lme4::VarCorr(fit))

glmer_summary <- function(cf, label, data_keys) {
  fit <- cf$value
  nAGQ <- fit@devcomp$dims[["nAGQ"]]
  vc <- lme4_varcorr(fit)
  ll <- as.numeric(logLik(fit))
  conv <- fit@optinfo$conv
  grad <- tryCatch(fit@optinfo$derivs$gradient, error = function(e) NULL)
  out <- list(
    fit = label,
    software = "lme4::glmer",
    nAGQ = nAGQ,
    method = if (nAGQ == 1) "Laplace" else sprintf("adaptive Gauss-Hermite, %d nodes", nAGQ),
    estimates = named_list(lme4::fixef(fit)),
    se = named_list(sqrt(diag(as.matrix(vcov(fit))))),
    se_note = "sqrt(diag(vcov(fit))): lme4's approximate covariance of the fixed effects",
    random_sd = vc$sd,
    random_cor = vc$cor,
    theta = named_list(lme4::getME(fit, "theta")),
    loglik = list(
      value = ll,
      scale = if (nAGQ == 1) {
        "full log-likelihood (includes -log y! / binomial coefficients), Laplace approximation"
      } else {
        paste("lme4's printed nAGQ>1 value: NOT the full log-likelihood scale (lme4 issues",
              "#161, #567); do not compare. See loglik_full_recomputed.")
      },
      comparable = (nAGQ == 1)
    ),
    deviance_lme4 = deviance(fit),
    n_obs = nobs(fit),
    singular = lme4::isSingular(fit),
    optimizer = fit@optinfo$optimizer,
    convergence = list(
      optimizer_code = conv$opt,
      lme4_messages = if (is.null(conv$lme4$messages)) list() else as.list(conv$lme4$messages),
      max_abs_gradient = if (is.null(grad)) NULL else max(abs(grad)),
      warnings = as.list(cf$warnings),
      messages = as.list(cf$messages)
    ),
    elapsed_seconds = cf$elapsed_seconds,
    ranef = lme4_ranef(fit),
    ranef_note = "conditional modes (empirical Bayes posterior modes) at the fitted parameters",
    fitted = cbind(data_keys, fitted = as.numeric(fitted(fit))),
    fitted_note = "fitted(fit): conditional means g^-1(X beta + Z u_mode)",
    suggested_tolerance = tolerance_for("glmer")
  )
  out
}

glmmTMB_summary <- function(cf, label, data_keys) {
  fit <- cf$value
  fe <- glmmTMB::fixef(fit)$cond
  V <- vcov(fit)$cond
  vc <- glmmTMB::VarCorr(fit)$cond
  vcl <- varcorr_lists(vc)
  sdr <- fit$sdr
  theta_idx <- which(names(sdr$par.fixed) == "theta")
  theta <- sdr$par.fixed[theta_idx]
  theta_se <- sqrt(pmax(diag(sdr$cov.fixed)[theta_idx], 0))
  # For scalar random effects theta = log(sd): SE(sd) by the delta method.
  scalar_sd <- all(vapply(vc, function(m) nrow(m) == 1, TRUE))
  sd_se <- NULL
  if (scalar_sd) {
    sd_se <- list()
    for (k in seq_along(vc)) {
      sd_se[[names(vc)[k]]] <- setNames(list(exp(theta[k]) * theta_se[k]), rownames(vc[[k]]))
    }
  }
  list(
    fit = label,
    software = "glmmTMB::glmmTMB",
    nAGQ = 1,
    method = "Laplace (TMB)",
    estimates = named_list(fe),
    se = named_list(sqrt(diag(V))),
    se_note = "sqrt(diag(vcov(fit)$cond)) from TMB::sdreport (observed information, joint with theta)",
    random_sd = vcl$sd,
    random_cor = vcl$cor,
    theta = list(values = as.numeric(theta), se = as.numeric(theta_se),
                 note = "glmmTMB theta: log-sd (and Cholesky-type correlation parameters)"),
    random_sd_se = sd_se,
    random_sd_se_note = if (scalar_sd) "delta method: sd * SE(log sd)" else NULL,
    loglik = list(
      value = as.numeric(logLik(fit)),
      scale = "full log-likelihood (includes -log y! / binomial coefficients), Laplace approximation",
      comparable = TRUE
    ),
    n_obs = nobs(fit),
    convergence = list(
      nlminb_code = fit$fit$convergence,
      nlminb_message = fit$fit$message,
      pdHess = sdr$pdHess,
      max_abs_gradient = max(abs(sdr$gradient.fixed)),
      warnings = as.list(cf$warnings),
      messages = as.list(cf$messages)
    ),
    elapsed_seconds = cf$elapsed_seconds,
    ranef = ranef_lists(glmmTMB::ranef(fit, condVar = TRUE)$cond, "condVar"),
    ranef_note = "conditional modes (empirical Bayes posterior modes) at the fitted parameters",
    fitted = cbind(data_keys, fitted = as.numeric(fitted(fit))),
    fitted_note = "fitted(fit): conditional means g^-1(X beta + Z u_mode)",
    suggested_tolerance = tolerance_for("glmmTMB")
  )
}

# One model fitted by glmer (Laplace and n_agq-node AGQ) and by glmmTMB (Laplace), captured.
glmm_fits <- function(formula, family, data, n_agq = 15) {
  list(
    glmer_nagq1 = capture_fit(lme4::glmer(formula, family = family, data = data, nAGQ = 1)),
    glmer_nagq15 = capture_fit(lme4::glmer(formula, family = family, data = data,
                                           nAGQ = n_agq)),
    glmmtmb = capture_fit(glmmTMB::glmmTMB(formula, family = family, data = data))
  )
}

# The summary of a captured glmer or glmmTMB fit: glmer_summary or glmmTMB_summary.
fit_summary <- function(cf, label, data_keys) {
  if (inherits(cf$value, "glmmTMB")) glmmTMB_summary(cf, label, data_keys) else
    glmer_summary(cf, label, data_keys)
}

# A glmer or glmmTMB fit's fixed-effects predictor X beta (the offset eta0 of the
# recomputed log-likelihoods).
fixed_predictor <- function(fit) {
  if (inherits(fit, "glmmTMB")) as.numeric(predict(fit, re.form = NA, type = "link")) else
    as.numeric(lme4::getME(fit, "X") %*% lme4::fixef(fit))
}

# The summary of a captured glmer/glmmTMB fit of a model with one scalar random effect per
# group (its SD at random_sd[[sd_at[1]]][[sd_at[2]]]), with the full-scale log-likelihood
# recomputed at its estimates by the fit's own rule (nAGQ nodes) and, when that is not
# already n_agq nodes, by n_agq-node AGQ.
scalar_fit_summary <- function(cf, label, data_keys, y, z, group, sd_at, n_agq = 15,
                               family = "poisson", size = NULL) {
  s <- fit_summary(cf, label, data_keys)
  eta0 <- fixed_predictor(cf$value)
  sigma <- s$random_sd[[sd_at[1]]][[sd_at[2]]]
  s <- add_recomputed_loglik(s, y, eta0, z, group, sigma, s$nAGQ, family, size)
  if (s$nAGQ != n_agq) {
    s$loglik_agq15_at_these_estimates <- agq_loglik_scalar(y, eta0, z, group, sigma, n_agq,
                                                           family, size)
  }
  s
}

# Add the independently recomputed full-scale AGQ/Laplace log-likelihood at a fit's
# parameter values (scalar random effect per group only).
add_recomputed_loglik <- function(summary, y, offset, z, group, sigma, n_nodes,
                                  family = "poisson", size = NULL) {
  val <- agq_loglik_scalar(y, offset, z, group, sigma, n_nodes, family, size)
  summary$loglik_full_recomputed <- list(
    value = val,
    n_nodes = n_nodes,
    note = paste0("computed in validation/common.R (agq_loglik_scalar) at this fit's estimates: ",
                  if (n_nodes == 1) "Laplace" else sprintf("adaptive Gauss-Hermite with %d nodes", n_nodes),
                  ", full scale (with -log y! / log choose(n,y))")
  )
  summary
}

write_fixture <- function(name, obj) {
  path <- file.path(FIXTURE_DIR, paste0(name, ".json"))
  txt <- jsonlite::toJSON(obj, auto_unbox = TRUE, digits = I(15), pretty = TRUE,
                          null = "null", na = "null", dataframe = "rows")
  writeLines(txt, path)
  cat("wrote", path, "\n")
  invisible(path)
}

# ---------------------------------------------------------------------------------------
# Vectorised version for the Poisson cell-wise model (one observation per random effect):
#   log L = sum_i f(eta_i, tau; y_i),  f = log \int Pois(y_i; exp(eta_i + u)) phi(u; 0, e^(2 tau)) du
# Same adaptive rule as agq_loglik_scalar (n_nodes = 1: Laplace), all cells at once.
# ---------------------------------------------------------------------------------------
cellwise_terms <- function(y, eta, tau, n_nodes = 15) {
  sigma <- exp(tau)
  u <- rep(0, length(y))
  for (it in 1:200) {
    mu <- exp(eta + u)
    step <- (y - mu - u / sigma^2) / (-mu - 1 / sigma^2)
    u <- u - step
    if (max(abs(step)) < 1e-14) break
  }
  s <- 1 / sqrt(exp(eta + u) + 1 / sigma^2)
  h <- function(v) dpois(y, exp(eta + v), log = TRUE) + dnorm(v, 0, sigma, log = TRUE)
  if (n_nodes == 1) return(h(u) + 0.5 * log(2 * pi) + log(s))
  gh <- statmod::gauss.quad(n_nodes, kind = "hermite")
  vals <- vapply(seq_len(n_nodes), function(k) {
    h(u + sqrt(2) * s * gh$nodes[k]) + gh$nodes[k]^2 + log(gh$weights[k])
  }, numeric(length(y)))
  m <- apply(vals, 1, max)
  m + log(rowSums(exp(vals - m))) + log(sqrt(2) * s)
}

agq_loglik_cellwise <- function(y, eta, sigma, n_nodes = 15) {
  if (sigma <= 0) return(sum(dpois(y, exp(eta), log = TRUE)))
  sum(cellwise_terms(y, eta, log(sigma), n_nodes))
}

# Direct ML for the cell-wise model. Each cell's term depends on beta only through the
# scalar eta_i, so the gradient and Hessian in (beta, tau = log sigma) are assembled from
# per-cell finite differences in (eta_i, tau) (5-point stencils, h = 1e-3; mixed term
# 4-point):  g_beta = X' f_e,  H = [X' diag(f_ee) X, X' f_et; ., sum f_tt].
# Newton with step halving from the supplied start; SEs from the inverse Hessian.
direct_cellwise_fit <- function(X, y, beta_start, sigma_start, n_nodes) {
  p <- ncol(X)
  hh <- 1e-3
  f <- function(eta, tau) cellwise_terms(y, eta, tau, n_nodes)
  derivs <- function(par) {
    eta <- as.numeric(X %*% par[1:p]); tau <- par[p + 1]
    f0 <- f(eta, tau)
    fe <- lapply(c(-2, -1, 1, 2), function(k) f(eta + k * hh, tau))
    ft <- lapply(c(-2, -1, 1, 2), function(k) f(eta, tau + k * hh))
    d1 <- function(v) (v[[1]] - 8 * v[[2]] + 8 * v[[3]] - v[[4]]) / (12 * hh)
    d2 <- function(v) (-v[[1]] + 16 * v[[2]] - 30 * f0 + 16 * v[[3]] - v[[4]]) / (12 * hh^2)
    fet <- (f(eta + hh, tau + hh) - f(eta + hh, tau - hh) - f(eta - hh, tau + hh) +
              f(eta - hh, tau - hh)) / (4 * hh^2)
    f_e <- d1(fe); f_ee <- d2(fe); f_t <- d1(ft); f_tt <- d2(ft)
    g <- c(crossprod(X, f_e), sum(f_t))
    H <- rbind(cbind(crossprod(X, X * f_ee), crossprod(X, fet)),
               c(crossprod(X, fet), sum(f_tt)))
    list(value = sum(f0), g = g, H = H)
  }
  t0 <- proc.time()[["elapsed"]]
  par <- c(beta_start, log(sigma_start))
  d <- derivs(par)
  n_iter <- 0
  for (it in 1:100) {
    step <- -solve(d$H, d$g)  # Newton step for maximisation (H negative definite)
    lam <- 1
    repeat {
      cand <- par + lam * step
      dc <- derivs(cand)
      if (is.finite(dc$value) && dc$value >= d$value - 1e-12) break
      lam <- lam / 2
      if (lam < 1e-6) break
    }
    if (lam < 1e-6) break
    par <- cand; d <- dc; n_iter <- it
    if (max(abs(lam * step)) < 1e-10) break
  }
  V <- solve(-d$H)
  beta <- setNames(par[1:p], colnames(X))
  se <- setNames(sqrt(diag(V))[1:p], colnames(X))
  sigma <- unname(exp(par[p + 1]))
  list(
    fit = if (n_nodes == 1) "direct_laplace" else sprintf("direct_agq%d", n_nodes),
    software = "validation/common.R direct_cellwise_fit (Newton, per-cell finite-difference derivatives)",
    nAGQ = n_nodes,
    method = if (n_nodes == 1) "Laplace" else sprintf("adaptive Gauss-Hermite, %d nodes", n_nodes),
    estimates = named_list(beta), se = named_list(se),
    se_note = "inverse Hessian in (beta, log sigma)",
    random_sd = list(cell = list(`(Intercept)` = sigma)),
    random_sd_se = list(cell = list(`(Intercept)` = unname(sigma * sqrt(V[p + 1, p + 1])))),
    random_sd_se_note = "delta method: sigma * SE(log sigma)",
    loglik = list(value = d$value, scale = "full log-likelihood (with -log y!)", comparable = TRUE),
    convergence = list(newton_iterations = n_iter, max_abs_gradient = max(abs(d$g))),
    elapsed_seconds = proc.time()[["elapsed"]] - t0,
    suggested_tolerance = tolerance_for("direct")
  )
}
