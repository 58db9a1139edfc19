/**
 * Where repositories live, as the engine config's {@code targets:} describe them ({@link io.tidemark.targets.TargetSpec}: one record per {@code type}, each opened by {@link io.tidemark.targets.TargetSpec#open}): the file-system target (file/), S3, Alibaba OSS and Ceph RGW (s3/), Ceph RADOS (rados/), and the wrappers every target can wear: retries of transient faults to a deadline ({@link io.tidemark.targets.RetryingObjectTarget}) and a bandwidth limit ({@link io.tidemark.targets.RateLimitedObjectTarget}). Each adapter passes the {@code ObjectTargetContract} suite of the test kit and translates its SDK's errors into the two kinds of {@code io.tidemark.core}.
 */
package io.tidemark.targets;
