# Time bayesm::rhierLinearModel on per-customer regressions written by bench_bayesm.py.
#
# Usage: Rscript benchmarks/bayesm_peer.R DATA.csv N_ITER N_ITER_SHORT OUT.json
#
# DATA.csv: columns customer (0-based, rows sorted by customer), y, x1..xq.
# Model (bayesm): y_i = X_i beta_i + e_i, e_i ~ N(0, tau_i), beta_i ~ N(Delta' z_i, Vbeta),
# z_i = 1, Vbeta ~ IW(nu, V), bayesm's default priors.
# Only the sampler call is timed (system.time around rhierLinearModel).  It is run twice,
# with N_ITER and with N_ITER_SHORT iterations; the difference of the two elapsed times over
# the difference of iterations is the time per iteration without the call's per-unit setup
# (crossprod per regression, in R), which is reported too.

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 4) stop("usage: Rscript bayesm_peer.R DATA.csv N_ITER N_ITER_SHORT OUT.json")
path <- args[1]
n_iter <- as.integer(args[2])
n_short <- as.integer(args[3])
out <- args[4]
suppressPackageStartupMessages(library(bayesm))

t_read <- system.time({
  d <- read.csv(path)
  xcols <- grep("^x", names(d), value = TRUE)
  X <- as.matrix(d[, xcols])
  idx <- split(seq_len(nrow(d)), d$customer)
  regdata <- lapply(idx, function(r) list(y = d$y[r], X = X[r, , drop = FALSE]))
  names(regdata) <- NULL
})[["elapsed"]]
nreg <- length(regdata)
Z <- matrix(1, nreg, 1)

fit_time <- function(R) {
  set.seed(1)
  keep <- max(1L, R %/% 20L)
  tm <- system.time(
    capture.output(draws <- rhierLinearModel(
      Data = list(regdata = regdata, Z = Z),
      Mcmc = list(R = R, keep = keep, nprint = 0)))
  )[["elapsed"]]
  list(seconds = tm, draws = draws)
}
short <- fit_time(n_short)
long <- fit_time(n_iter)
per_iter <- (long$seconds - short$seconds) / (n_iter - n_short)
vb <- long$draws$Vbetadraw
vb <- vb[(nrow(vb) %/% 2 + 1):nrow(vb), , drop = FALSE]
delta <- long$draws$Deltadraw
delta <- delta[(nrow(delta) %/% 2 + 1):nrow(delta), , drop = FALSE]
blas <- tryCatch(extSoftVersion()[["BLAS"]], error = function(e) "")
if (blas == "") blas <- tryCatch(La_library(), error = function(e) "")
json <- sprintf(paste0(
  '{"customers": %d, "rows": %d, "coefficients": %d, "iterations": %d, ',
  '"iterations_short": %d, "seconds": %.4f, "seconds_short": %.4f, ',
  '"seconds_per_iteration": %.6f, "seconds_per_iteration_incl_setup": %.6f, ',
  '"seconds_read_and_split": %.3f, "bayesm_version": "%s", "r_version": "%s", ',
  '"blas": "%s", "delta_mean_second_half": [%s], "vbeta_11_mean_second_half": %.6f}'),
  nreg, nrow(d), ncol(X), n_iter, n_short, long$seconds, short$seconds, per_iter,
  long$seconds / n_iter, t_read, as.character(packageVersion("bayesm")),
  R.version.string, blas, paste(sprintf("%.6f", colMeans(delta)), collapse = ", "),
  mean(vb[, 1]))
writeLines(json, out)
cat(json, "\n")
