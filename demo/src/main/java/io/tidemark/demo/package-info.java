/**
 * {@code tidemark demo} and {@code tidemark bench}, added to the CLI through {@link io.tidemark.cli.MoreCommands}: the only module whose main code uses the test kit (a throwaway QEMU VM, S3Proxy).
 */
package io.tidemark.demo;
