package io.tidemark.format;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.HexFormat;
import java.util.random.RandomGenerator;

/**
 * Restore point ids sort by capture time: {@code 20261124T013000.123Z-3fa9c1}. The suffix keeps two
 * points of one VM taken in the same millisecond apart.
 */
public final class RestorePointIds {

    private static final DateTimeFormatter FORMAT =
            DateTimeFormatter.ofPattern("uuuuMMdd'T'HHmmss.SSS'Z'").withZone(ZoneOffset.UTC);

    private RestorePointIds() {}

    public static String next(Instant time, RandomGenerator random) {
        byte[] suffix = new byte[3];
        random.nextBytes(suffix);
        return FORMAT.format(time) + "-" + HexFormat.of().formatHex(suffix);
    }
}
