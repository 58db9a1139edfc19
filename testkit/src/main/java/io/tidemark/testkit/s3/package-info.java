/**
 * A real S3 endpoint for tests: {@link io.tidemark.testkit.s3.EmbeddedS3} runs S3Proxy in-process
 * on loopback.
 */
package io.tidemark.testkit.s3;
