/**
 * A Java NBD client ({@link io.tidemark.workers.nbd.NbdClient}) for reading captured disks: fixed
 * newstyle handshake, structured replies, meta contexts ({@code base:allocation}, {@code
 * qemu:dirty-bitmap:*}), block status and pipelined reads over a Unix socket; the connect, the
 * handshake and a silent server while requests are pending each have a deadline.
 */
package io.tidemark.workers.nbd;
