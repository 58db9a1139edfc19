package io.tidemark.format;

import io.tidemark.core.PermanentException;
import java.util.regex.Pattern;

/**
 * The key layout of a repository. Immutable, content-addressed data lives under {@code chunks/},
 * {@code pages/} and {@code roots/}; commits under {@code manifests/}; mutable state (locks, GC
 * marks) only under {@code state/}, so Object Lock can protect everything else.
 *
 * <pre>
 * config                                  repository config (JSON), written once
 * keys/&lt;sha256 hex&gt;                        encrypted repositories: master keys wrapped by a passphrase
 * chunks/ab/abcdef…                       chunk objects, named by the SHA-256 of their plaintext
 * pages/ab/abcdef…                        index pages
 * roots/ab/abcdef…                        index roots (one per disk per restore point)
 * manifests/&lt;vm&gt;/&lt;restore-point-id&gt;.json   manifests: written last, the commit
 * state/marks/&lt;vm&gt;/&lt;restore-point-id&gt;/&lt;version&gt;.json  marks (pinned, expired) on restore points:
 *                                         the highest version holds; older ones are left by a crash
 * state/marks/&lt;vm&gt;/&lt;restore-point-id&gt;.json  a mark written before versions (version 0), read
 * state/…                                 mutable state, never protected
 * state/drills/&lt;vm&gt;/&lt;drill-id&gt;.json        recovery drill results, newest id last
 * state/boot-reads/&lt;vm&gt;/&lt;disk&gt;/&lt;trace-id&gt;.json  chunk numbers an instantly restored disk
 *                                         was read at during boot (prefetched next time), newest last
 * </pre>
 */
public final class ObjectKeys {

    public static final String CONFIG = "config";
    public static final String KEYS = "keys/";
    public static final String CHUNKS = "chunks/";
    public static final String PAGES = "pages/";
    public static final String ROOTS = "roots/";
    public static final String MANIFESTS = "manifests/";
    public static final String STATE = "state/";
    public static final String DRILLS = STATE + "drills/";
    public static final String BOOT_READS = STATE + "boot-reads/";

    private static final Pattern VM_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");

    private ObjectKeys() {}

    public static String chunk(Digest d) {
        return addressed(CHUNKS, d);
    }

    public static String page(Digest d) {
        return addressed(PAGES, d);
    }

    public static String root(Digest d) {
        return addressed(ROOTS, d);
    }

    /** A key object, named by the SHA-256 of its bytes. */
    public static String keyObject(Digest d) {
        return KEYS + d.hex();
    }

    public static String manifestPrefix(String vm) {
        return MANIFESTS + checkVmName(vm) + "/";
    }

    public static String manifest(String vm, String restorePointId) {
        return manifestPrefix(vm) + restorePointId + ".json";
    }

    public static String markPrefix(String vm) {
        return STATE + "marks/" + checkVmName(vm) + "/";
    }

    /**
     * The unversioned mark on a restore point, as written before marks had versions: read as
     * version 0, removed when the mark is next replaced.
     */
    public static String mark(String vm, String restorePointId) {
        return markPrefix(vm) + restorePointId + ".json";
    }

    /**
     * Version {@code version} (from 1) of the mark (pinned, expired) on a restore point: mutable, so
     * under {@code state/}. A replacement writes the next version before it removes the older ones,
     * so a reader takes the highest version present.
     */
    public static String mark(String vm, String restorePointId, long version) {
        if (version < 1) {
            throw new IllegalArgumentException("mark versions start at 1, got " + version);
        }
        return markPrefix(vm) + restorePointId + "/" + String.format(java.util.Locale.ROOT, "%019d", version) + ".json";
    }

    /** A mark key of one VM parsed: the restore point it marks and its version (0: unversioned). */
    public record MarkKey(String restorePointId, long version) {}

    /**
     * The restore point and version of a key listed under {@link #markPrefix}({@code vm}); empty for
     * a key that is not a mark.
     */
    public static java.util.Optional<MarkKey> parseMark(String vm, String key) {
        String prefix = markPrefix(vm);
        if (!key.startsWith(prefix) || !key.endsWith(".json")) {
            return java.util.Optional.empty();
        }
        String rest = key.substring(prefix.length(), key.length() - ".json".length());
        int slash = rest.indexOf('/');
        if (slash < 0) {
            return rest.isEmpty() ? java.util.Optional.empty() : java.util.Optional.of(new MarkKey(rest, 0));
        }
        String version = rest.substring(slash + 1);
        if (slash == 0 || !version.matches("\\d{1,19}")) {
            return java.util.Optional.empty();
        }
        try {
            return java.util.Optional.of(new MarkKey(rest.substring(0, slash), Long.parseLong(version)));
        } catch (NumberFormatException e) {
            return java.util.Optional.empty(); // beyond Long.MAX_VALUE: not one we wrote
        }
    }

    /** The restore point id of a manifest key, or null when the key is not a manifest. */
    public static String restorePointIdOf(String manifestKey) {
        if (!manifestKey.startsWith(MANIFESTS) || !manifestKey.endsWith(".json")) {
            return null;
        }
        int slash = manifestKey.lastIndexOf('/');
        return manifestKey.substring(slash + 1, manifestKey.length() - ".json".length());
    }

    /** VM names become key segments, so they are restricted to a safe alphabet. */
    public static String checkVmName(String vm) {
        if (vm == null || !VM_NAME.matcher(vm).matches()) {
            throw new PermanentException("invalid VM name '" + vm
                    + "': use 1-128 characters of letters, digits, '.', '_' and '-', starting with a letter or digit");
        }
        return vm;
    }

    /** Where the drill results of {@code vm} are kept. */
    public static String drillPrefix(String vm) {
        return DRILLS + checkVmName(vm) + "/";
    }

    /** One drill result of {@code vm}; ids sort by time. */
    public static String drill(String vm, String drillId) {
        return drillPrefix(vm) + drillId + ".json";
    }

    /** Where the boot-read traces of disk {@code disk} of {@code vm} are kept. */
    public static String bootReadsPrefix(String vm, String disk) {
        return BOOT_READS + checkVmName(vm) + "/" + checkSegment("disk", disk) + "/";
    }

    /** One boot-read trace of disk {@code disk} of {@code vm}; ids sort by time. */
    public static String bootReads(String vm, String disk, String traceId) {
        return bootReadsPrefix(vm, disk) + traceId + ".json";
    }

    private static String checkSegment(String what, String name) {
        if (name == null || !VM_NAME.matcher(name).matches()) {
            throw new PermanentException("invalid " + what + " name '" + name
                    + "' for a key: use 1-128 characters of letters, digits, '.', '_' and '-'");
        }
        return name;
    }

    private static String addressed(String prefix, Digest d) {
        String hex = d.hex();
        return prefix + hex.substring(0, 2) + "/" + hex;
    }
}
