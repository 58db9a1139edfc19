/**
 * Running external programs (qemu-img, qemu-nbd, QEMU, fsck, ceph…) the one way: {@link
 * io.tidemark.core.process.ExternalCommand} bounds the wait and the captured output, kills the child
 * on timeout or interrupt, and names the command line (secrets redacted) and what to install in its
 * errors.
 */
package io.tidemark.core.process;
