package io.tidemark.core.files;

import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;

/** Recursive deletion, the one way every module removes a scratch or work directory. */
public final class FileTrees {

    private FileTrees() {}

    /**
     * Removes {@code root} and everything under it.
     *
     * <p>Contract: symbolic links are removed, never followed, so nothing outside the tree is touched
     * (a link given as {@code root} is removed itself, not its target). A missing {@code root}, or an
     * entry that vanishes meanwhile, is not an error. Every entry is attempted even after a failure;
     * the first failure is thrown once the walk is done, with later ones attached as suppressed.
     *
     * @throws IOException naming the entry that could not be removed (permissions, a busy mount)
     */
    public static void delete(Path root) throws IOException {
        if (!Files.exists(root, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        Failures failures = new Failures();
        // walkFileTree without FOLLOW_LINKS reports a link (also one to a directory) as a file
        Files.walkFileTree(root, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) {
                failures.remove(file);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFileFailed(Path file, IOException e) {
                if (!(e instanceof NoSuchFileException)) {
                    failures.add(e);
                }
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path dir, IOException e) {
                if (e != null && !(e instanceof NoSuchFileException)) {
                    failures.add(e);
                }
                failures.remove(dir);
                return FileVisitResult.CONTINUE;
            }
        });
        failures.throwIfAny();
    }

    private static final class Failures {
        private IOException first;

        void remove(Path p) {
            try {
                Files.deleteIfExists(p);
            } catch (IOException e) {
                add(e);
            }
        }

        void add(IOException e) {
            if (first == null) {
                first = e;
            } else {
                first.addSuppressed(e);
            }
        }

        void throwIfAny() throws IOException {
            if (first != null) {
                throw first;
            }
        }
    }
}
