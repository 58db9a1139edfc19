/** File-tree helpers shared by every module: {@link io.tidemark.core.files.FileTrees}. */
package io.tidemark.core.files;
