package io.tidemark.targets.file;

import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Path;

/**
 * The call by which a {@link FileObjectTarget} in {@link Durability#FILESYSTEM} mode makes a batch
 * durable: {@code syncfs(2)} of the file system holding its root (ADR 25). A sibling of {@link
 * FileSync}; {@link #SYSTEM} is the only production implementation, tests pass one that records the
 * order of the calls or fails them.
 */
public interface FileSystemSync {

    /**
     * Opens the file system holding {@code dir} for {@link Handle#sync()}. Writeback errors of that
     * file system from now on are reported by the handle's next {@code sync} (Linux ≥ 5.8 reports
     * them per open file), so the target opens it before it writes the first object it will rely on.
     */
    Handle open(Path dir) throws IOException;

    /** An open file system. */
    interface Handle extends Closeable {
        /**
         * Writes every dirty page and inode of the file system to stable storage; returns only when
         * they are, and throws when the file system reports a writeback error since the handle was
         * opened or since the last call.
         */
        void sync() throws IOException;

        @Override
        void close() throws IOException;
    }

    /** {@code open(dir, O_RDONLY|O_DIRECTORY|O_CLOEXEC)}, {@code syncfs(fd)}, {@code close(fd)} through JNA. */
    FileSystemSync SYSTEM = Syncfs::open;
}
