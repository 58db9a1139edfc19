package io.tidemark.core.hypervisor;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.regex.Pattern;

/**
 * How checkpoints (QEMU dirty bitmaps, libvirt checkpoints) are named, so that several repositories
 * can protect the same VM without taking each other's checkpoints for leftovers.
 *
 * <p>A checkpoint is {@code tm-<owner>-<restore point id>}; the owner is a short token of the
 * repository ({@code r} and 10 hex digits). Names from before owners existed are {@code tm-<restore
 * point id>}: a restore point id starts with a digit, an owner with a letter, so the two never
 * collide. An old name still works as the parent of the next capture (its bitmap is used and then
 * dropped as usual); it is never taken for a leftover of an owner.
 */
public final class CheckpointNames {

    /** What every checkpoint of this engine starts with. */
    public static final String PREFIX = "tm-";

    private static final Pattern OWNER = Pattern.compile("[a-z][a-z0-9]{0,31}");

    private CheckpointNames() {}

    /**
     * The owner token of a repository, stable for the same identity: {@code r} and the first 10 hex
     * digits of the SHA-256 of {@code repositoryIdentity} (the repository's id, or failing that its
     * location). The identity itself (which might hold a bucket name) is not revealed.
     */
    public static String ownerOf(String repositoryIdentity) {
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(repositoryIdentity.getBytes(StandardCharsets.UTF_8));
            return "r" + HexFormat.of().formatHex(d).substring(0, 10);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JVM has no SHA-256", e);
        }
    }

    /** {@code tm-<owner>-<pointId>}. */
    public static String name(String owner, String pointId) {
        return prefixOf(owner) + pointId;
    }

    /** {@code tm-<owner>-}: what every checkpoint of {@code owner} starts with. */
    public static String prefixOf(String owner) {
        checkOwner(owner);
        return PREFIX + owner + "-";
    }

    static void checkOwner(String owner) {
        if (!OWNER.matcher(owner).matches()) {
            throw new IllegalArgumentException("checkpoint owner '" + owner
                    + "' must be a lower-case letter followed by up to 31 lower-case letters or digits");
        }
    }
}
