package io.tidemark.targets.file;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Native;
import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Path;
import java.util.Locale;

/**
 * {@code syncfs(2)} through JNA (Java 17 has no binding for it): an open directory of the file
 * system, {@code syncfs} on it, {@code close}. glibc ≥ 2.14 has {@code syncfs}; Linux ≥ 5.8 reports
 * writeback errors of the file system since the descriptor was opened (before, only errors of the
 * call itself), which is why the descriptor is kept open between calls.
 */
final class Syncfs implements FileSystemSync.Handle {

    /** The three libc calls, errno through {@link LastErrorException}. */
    interface LibC extends Library {
        LibC LIB = Native.load("c", LibC.class);

        int open(String path, int flags) throws LastErrorException;

        int syncfs(int fd) throws LastErrorException;

        int close(int fd) throws LastErrorException;

        String strerror(int errnum);
    }

    private static final int O_RDONLY = 0;
    private static final int O_CLOEXEC = 02000000;
    /** {@code O_DIRECTORY}: 040000 on ARM, 0200000 on x86 and most others. */
    private static final int O_DIRECTORY =
            System.getProperty("os.arch", "").toLowerCase(Locale.ROOT).matches("aarch64|arm.*") ? 040000 : 0200000;

    /** Major and minor of {@code os.version}, e.g. {@code 6.1} of {@code 6.1.0-28-amd64}. */
    private static final java.util.regex.Pattern KERNEL_VERSION = java.util.regex.Pattern.compile("^(\\d+)\\.(\\d+)");

    private final Path dir;
    private final int fd;
    private boolean closed;

    private Syncfs(Path dir, int fd) {
        this.dir = dir;
        this.fd = fd;
    }

    static FileSystemSync.Handle open(Path dir) throws IOException {
        String os = System.getProperty("os.name", "");
        String version = System.getProperty("os.version", "");
        if (!reportsWritebackErrors(os, version)) {
            throw new IOException("durability: filesystem needs Linux 5.8 or later, where syncfs reports the"
                    + " writeback errors of the file system; this is " + os + " " + version + ", where a lost"
                    + " write could go unnoticed. Use durability: per-file for " + dir);
        }
        try {
            return new Syncfs(dir, LibC.LIB.open(dir.toString(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        } catch (LastErrorException e) {
            throw error(dir, "open", e);
        } catch (LinkageError e) {
            throw new IOException(
                    "cannot call syncfs for " + dir + " (no libc with syncfs through JNA: " + e.getMessage()
                            + "); use durability: per-file",
                    e);
        }
    }

    /** Whether {@code syncfs} reports writeback errors on this system: Linux 5.8 or later. */
    static boolean reportsWritebackErrors(String osName, String osVersion) {
        if (!osName.equals("Linux")) {
            return false;
        }
        java.util.regex.Matcher m = KERNEL_VERSION.matcher(osVersion);
        if (!m.find()) {
            return false;
        }
        int major = Integer.parseInt(m.group(1));
        int minor = Integer.parseInt(m.group(2));
        return major > 5 || (major == 5 && minor >= 8);
    }

    @Override
    public synchronized void sync() throws IOException {
        if (closed) {
            throw new IOException("syncfs handle for " + dir + " is closed");
        }
        try {
            LibC.LIB.syncfs(fd);
        } catch (LastErrorException e) {
            throw error(dir, "syncfs", e);
        }
    }

    @Override
    public synchronized void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        try {
            LibC.LIB.close(fd);
        } catch (LastErrorException e) {
            throw error(dir, "close", e);
        }
    }

    /** A {@link FileSystemException} whose reason is the system's text for the errno (as the JDK's are). */
    private static IOException error(Path dir, String call, LastErrorException e) {
        int errno = e.getErrorCode();
        String text;
        try {
            text = LibC.LIB.strerror(errno);
        } catch (RuntimeException | LinkageError ignored) { // the errno alone then
            text = "errno " + errno;
        }
        FileSystemException out =
                new FileSystemException(dir.toString(), null, call + ": " + text + " (errno " + errno + ")");
        out.initCause(e);
        return out;
    }

    @Override
    public String toString() {
        return "syncfs(" + dir + ")";
    }
}
