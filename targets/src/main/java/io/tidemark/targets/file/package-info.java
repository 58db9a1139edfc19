/**
 * The file-system adapter of {@link io.tidemark.core.target.ObjectTarget}: {@link
 * io.tidemark.targets.file.FileObjectTarget} stores each object as a file under a root directory
 * on a local disk or an NFS mount. It is the embedded default repository and a replication target.
 */
package io.tidemark.targets.file;
