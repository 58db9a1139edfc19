package io.tidemark.targets.file;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The two calls by which a {@link FileObjectTarget} makes what it wrote durable: {@code fsync} of a
 * file it wrote and {@code fsync} of a directory it changed. {@link #SYSTEM} is the only production
 * implementation; tests pass one that records the order of the calls or fails them (fault
 * injection), to show that no object name and no manifest appears before the bytes under it are
 * durable (docs/adr/0021-batched-durability.md).
 */
public interface FileSync {

    /** Makes the bytes and size of {@code file} durable; returns only when they are. */
    void file(Path file) throws IOException;

    /** Makes the entries of {@code dir} (names linked or removed in it) durable. */
    void directory(Path dir) throws IOException;

    /** {@code fsync(2)} through {@link FileChannel#force}. */
    FileSync SYSTEM = new FileSync() {
        @Override
        public void file(Path file) throws IOException {
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
                channel.force(true);
            }
        }

        @Override
        public void directory(Path dir) throws IOException {
            try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
                channel.force(true);
            }
        }

        @Override
        public String toString() {
            return "fsync";
        }
    };
}
