package io.tidemark.workers.files;

import java.time.Instant;
import java.util.Map;
import java.util.Optional;

/**
 * One file as a restore point's file system holds it.
 *
 * @param name the last path component ({@code /} for the root)
 * @param path the absolute path inside the file system
 * @param type file, directory, symlink, char, block, fifo or socket
 * @param mode the permission bits with setuid/setgid/sticky ({@code st_mode & 07777})
 * @param uid the owner's numeric id
 * @param gid the group's numeric id
 * @param size bytes ({@code st_size})
 * @param mtime the modification time, to the nanosecond the file system keeps
 * @param target a symlink's target
 */
public record FileEntry(
        String name,
        String path,
        String type,
        int mode,
        long uid,
        long gid,
        long size,
        Instant mtime,
        Optional<String> target) {

    static final int S_IFMT = 0170000;

    /** From the {@code st_*} fields guestfish prints for {@code lstatns}. */
    static FileEntry of(String path, Map<String, Long> st, Optional<String> target) {
        long m = st.getOrDefault("st_mode", 0L);
        String name = path.equals("/") ? "/" : path.substring(path.lastIndexOf('/') + 1);
        return new FileEntry(
                name,
                path,
                type((int) m),
                (int) (m & 07777),
                st.getOrDefault("st_uid", 0L),
                st.getOrDefault("st_gid", 0L),
                st.getOrDefault("st_size", 0L),
                Instant.ofEpochSecond(st.getOrDefault("st_mtime_sec", 0L), st.getOrDefault("st_mtime_nsec", 0L)),
                target);
    }

    static String type(int mode) {
        return switch (mode & S_IFMT) {
            case 0140000 -> "socket";
            case 0120000 -> "symlink";
            case 0100000 -> "file";
            case 060000 -> "block";
            case 040000 -> "directory";
            case 020000 -> "char";
            case 010000 -> "fifo";
            default -> "unknown";
        };
    }

    public boolean isDirectory() {
        return type.equals("directory");
    }

    /** {@code ls -l} style: {@code drwxr-xr-x}. */
    public String modeString() {
        char t =
                switch (type) {
                    case "directory" -> 'd';
                    case "symlink" -> 'l';
                    case "char" -> 'c';
                    case "block" -> 'b';
                    case "fifo" -> 'p';
                    case "socket" -> 's';
                    default -> '-';
                };
        StringBuilder b = new StringBuilder().append(t);
        String rwx = "rwxrwxrwx";
        for (int i = 0; i < 9; i++) {
            b.append((mode & (1 << (8 - i))) != 0 ? rwx.charAt(i) : '-');
        }
        if ((mode & 04000) != 0) {
            b.setCharAt(3, b.charAt(3) == 'x' ? 's' : 'S');
        }
        if ((mode & 02000) != 0) {
            b.setCharAt(6, b.charAt(6) == 'x' ? 's' : 'S');
        }
        if ((mode & 01000) != 0) {
            b.setCharAt(9, b.charAt(9) == 'x' ? 't' : 'T');
        }
        return b.toString();
    }
}
