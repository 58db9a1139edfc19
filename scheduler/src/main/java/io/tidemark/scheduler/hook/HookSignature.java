package io.tidemark.scheduler.hook;

import java.nio.charset.StandardCharsets;
import java.security.InvalidKeyException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * How a pre-deploy hook request is authenticated. The client sends {@value #TIMESTAMP_HEADER}: the
 * current time in Unix seconds, and {@value #SIGNATURE_HEADER}: {@code sha256=} followed by the
 * lower-case hex of HMAC-SHA256(secret, timestamp + "." + body), where body is the exact request
 * body bytes. The server accepts a timestamp at most {@link HookServer#MAX_CLOCK_SKEW} from its
 * clock and each (timestamp, signature) once.
 *
 * <p>Equivalent shell: {@code printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$secret"}.
 */
public final class HookSignature {

    public static final String TIMESTAMP_HEADER = "X-Tidemark-Timestamp";
    public static final String SIGNATURE_HEADER = "X-Tidemark-Signature";
    public static final String PREFIX = "sha256=";

    private static final String ALGORITHM = "HmacSHA256";
    private static final int HEX_LENGTH = 64;

    private HookSignature() {}

    /** The {@value #SIGNATURE_HEADER} value for {@code body} sent at {@code timestamp}. */
    public static String sign(HookSecret secret, String timestamp, byte[] body) {
        return PREFIX + HexFormat.of().formatHex(mac(secret, timestamp, body));
    }

    /**
     * True when {@code header} is the signature of {@code body} at {@code timestamp}. Compares in
     * time independent of where the values differ.
     */
    public static boolean verify(HookSecret secret, String timestamp, byte[] body, String header) {
        if (header == null || !header.startsWith(PREFIX) || header.length() != PREFIX.length() + HEX_LENGTH) {
            return false;
        }
        byte[] given;
        try {
            given = HexFormat.of().parseHex(header.substring(PREFIX.length()).toLowerCase(java.util.Locale.ROOT));
        } catch (IllegalArgumentException notHex) {
            return false;
        }
        return MessageDigest.isEqual(mac(secret, timestamp, body), given);
    }

    private static byte[] mac(HookSecret secret, String timestamp, byte[] body) {
        try {
            Mac mac = Mac.getInstance(ALGORITHM);
            mac.init(new SecretKeySpec(secret.key(), ALGORITHM));
            mac.update(timestamp.getBytes(StandardCharsets.UTF_8));
            mac.update((byte) '.');
            return mac.doFinal(body);
        } catch (NoSuchAlgorithmException | InvalidKeyException e) { // every Java platform has HmacSHA256
            throw new IllegalStateException("this JVM cannot compute " + ALGORITHM, e);
        }
    }
}
