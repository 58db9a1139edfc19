/**
 * A real single-node Ceph for tests: {@link io.tidemark.testkit.ceph.CephCluster} starts a monitor,
 * a memstore OSD and radosgw on loopback from Debian's packages in about two seconds, and {@link
 * io.tidemark.testkit.ceph.CephClusterExtension} shares one cluster between the test classes of a
 * JVM.
 */
package io.tidemark.testkit.ceph;
