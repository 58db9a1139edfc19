/**
 * The S3 adapter of {@link io.tidemark.core.target.ObjectTarget} for AWS S3, Ceph RGW, other
 * S3-compatible servers and Alibaba OSS through its S3 API: {@link
 * io.tidemark.targets.s3.S3ObjectTarget}, configured by {@link
 * io.tidemark.targets.S3TargetSpec} and signing with {@link io.tidemark.targets.s3.S3Credentials}.
 */
package io.tidemark.targets.s3;
