package io.tidemark.engine;

import io.tidemark.core.PermanentException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.Base64;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The token that opens the status page: the UTF-8 text of a file without surrounding whitespace, at
 * least {@link #MIN_BYTES} long. Never in {@link #toString()}, logs or events. Candidates are
 * compared in constant time (their SHA-256 digests, so neither content nor length leaks through
 * timing).
 *
 * <p>A browser that logged in holds a cookie derived from the token ({@link #cookieValue()}, an
 * HMAC), not the token itself; changing the token file and restarting the engine invalidates it.
 */
final class StatusToken {

    /** The shortest token accepted, in bytes. */
    static final int MIN_BYTES = 16;

    private static final String HOW =
            "; generate one with `openssl rand -hex 32` into a file readable only by the engine's user (mode 0600)";

    private final byte[] digest;
    private final String cookie;

    private StatusToken(String text) {
        byte[] key = text.getBytes(StandardCharsets.UTF_8);
        this.digest = sha256(key);
        this.cookie = hmac(key, "tidemark-status-page-cookie-v1");
    }

    /**
     * The token {@code text}, stripped.
     *
     * @throws PermanentException if it is shorter than {@link #MIN_BYTES} bytes ({@code source} says where it came from)
     */
    static StatusToken of(String text, String source) {
        String t = text.strip();
        if (t.getBytes(StandardCharsets.UTF_8).length < MIN_BYTES) {
            throw new PermanentException(
                    "the status page token in " + source + " is shorter than " + MIN_BYTES + " bytes" + HOW);
        }
        return new StatusToken(t);
    }

    /**
     * The token held by {@code file}.
     *
     * @throws PermanentException if the file cannot be read or holds too short a token
     */
    static StatusToken fromFile(Path file) {
        try {
            return of(Files.readString(file, StandardCharsets.UTF_8), "file " + file);
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot read the status page token file " + file + " ("
                            + e.getClass().getSimpleName()
                            + "); check statusPage.tokenFile in the engine config and the file's permissions",
                    e);
        }
    }

    /** True if {@code candidate} (stripped) is the token; constant time; null is no match. */
    boolean matches(String candidate) {
        if (candidate == null) {
            return false;
        }
        return MessageDigest.isEqual(digest, sha256(candidate.strip().getBytes(StandardCharsets.UTF_8)));
    }

    /** The value of the login cookie: an HMAC of a fixed label under the token. */
    String cookieValue() {
        return cookie;
    }

    /** True if {@code candidate} is {@link #cookieValue()}; constant time; null is no match. */
    boolean matchesCookie(String candidate) {
        if (candidate == null) {
            return false;
        }
        return MessageDigest.isEqual(
                sha256(cookie.getBytes(StandardCharsets.US_ASCII)), sha256(candidate.getBytes(StandardCharsets.UTF_8)));
    }

    private static byte[] sha256(byte[] bytes) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(bytes);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("every Java runtime has SHA-256", e);
        }
    }

    private static String hmac(byte[] key, String label) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            return Base64.getUrlEncoder()
                    .withoutPadding()
                    .encodeToString(mac.doFinal(label.getBytes(StandardCharsets.UTF_8)));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("every Java runtime has HmacSHA256", e);
        }
    }

    /** Never the token. */
    @Override
    public String toString() {
        return "StatusToken[redacted]";
    }
}
