/**
 * A real libvirtd for integration tests: {@link io.tidemark.testkit.libvirt.Libvirtd} starts an
 * isolated privileged daemon per test class from Debian's packages, {@link
 * io.tidemark.testkit.libvirt.LibvirtDomain} defines TCG domains on it and writes to their disks like
 * a guest.
 */
package io.tidemark.testkit.libvirt;
