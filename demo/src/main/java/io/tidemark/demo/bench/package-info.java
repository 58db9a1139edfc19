/**
 * The scenarios of {@code tidemark bench}: a deterministic test image, qcow2 images exported by
 * {@code qemu-nbd} as a stand-in hypervisor, and the baselines (nbdcopy, restic) run on the same
 * data in the same run, so that every figure is a ratio measured on this machine at this moment.
 */
package io.tidemark.demo.bench;
