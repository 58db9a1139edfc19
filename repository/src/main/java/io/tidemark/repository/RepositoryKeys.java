package io.tidemark.repository;

import io.tidemark.core.CorruptObjectException;
import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Digest;
import io.tidemark.format.MasterKeys;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.Passphrase;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.WrappedKeys;
import java.security.SecureRandom;
import java.util.List;
import java.util.Optional;

/**
 * The key objects ({@code keys/}) of an encrypted repository: creating the master keys, unlocking
 * them with a passphrase, and changing the passphrase. The passphrase and the keys are never logged
 * or put in a message.
 *
 * @param master the master keys; null for an unencrypted repository
 * @param keyObject the key object they were unwrapped from; null when not encrypted or when opened
 *     as a replica (which has no passphrase to change)
 */
record RepositoryKeys(MasterKeys master, String keyObject) {

    private static final SecureRandom RANDOM = new SecureRandom();

    /** An unencrypted repository's. */
    static final RepositoryKeys NONE = new RepositoryKeys(null, null);

    boolean encrypted() {
        return master != null;
    }

    /** The same master keys without a key object: how a replica holds them. */
    RepositoryKeys forReplica() {
        return new RepositoryKeys(master, null);
    }

    /**
     * New random master keys, wrapped under {@code passphrase} into a key object on {@code target};
     * the caller writes the config (with {@link RepositoryConfig#encryptedWith}) after it.
     */
    static MasterKeys create(ObjectTarget target, Passphrase passphrase, int kdfIterations) {
        MasterKeys fresh = MasterKeys.generate(RANDOM);
        putKeyObject(target, WrappedKeys.wrap(fresh, passphrase, kdfIterations, RANDOM));
        return fresh;
    }

    /**
     * The master keys of the encrypted repository {@code config} at {@code target}, from the first
     * key object that opens with {@code passphrase} and matches the config's key check.
     *
     * @throws PermanentException "wrong passphrase for repository …" when none does
     */
    static RepositoryKeys unlock(ObjectTarget target, RepositoryConfig config, Passphrase passphrase) {
        String check = config.encryption().orElseThrow().keyCheck();
        List<String> candidates = target.list(ObjectKeys.KEYS);
        if (candidates.isEmpty()) {
            throw new PermanentException("encrypted repository " + target.describe() + " has no key objects under "
                    + ObjectKeys.KEYS + ": without them its data cannot be read. Copy the keys/ objects from"
                    + " another location that holds this repository");
        }
        int corrupt = 0;
        for (String k : candidates) {
            Optional<byte[]> bytes = target.get(k);
            if (bytes.isEmpty()) {
                continue; // removed by a concurrent passphrase change
            }
            WrappedKeys wrapped;
            try {
                wrapped = WrappedKeys.parse(k, bytes.get());
            } catch (CorruptObjectException e) {
                corrupt++;
                continue;
            }
            Optional<MasterKeys> unwrapped = wrapped.unwrap(passphrase, RANDOM);
            if (unwrapped.isPresent() && unwrapped.get().keyCheck().equals(check)) {
                return new RepositoryKeys(unwrapped.get(), k);
            }
        }
        throw new PermanentException("wrong passphrase for repository " + target.describe()
                + (corrupt > 0 ? " (" + corrupt + " of its key objects are unreadable)" : "")
                + ": check TIDEMARK_PASSPHRASE or the passphrase file");
    }

    /**
     * Re-wraps the master keys under {@code next} (see {@link Repository#changePassphrase}).
     *
     * @return the new key object's key
     */
    String changePassphrase(ObjectTarget target, RepositoryConfig config, Passphrase next, int kdfIterations) {
        if (master == null || keyObject == null) {
            throw new PermanentException("repository " + target.describe() + " is not encrypted (or was opened"
                    + " without a passphrase): there is no passphrase to change");
        }
        String added = putKeyObject(target, WrappedKeys.wrap(master, next, kdfIterations, RANDOM));
        RepositoryKeys reopened = unlock(target, config, next);
        if (!reopened.master.keyCheck().equals(master.keyCheck())) {
            throw new IllegalStateException("a freshly written key object opened other keys");
        }
        if (!added.equals(keyObject)) {
            target.delete(keyObject);
        }
        return added;
    }

    /** Copies the key objects of {@code from} (ciphertext, as they are) to {@code to}. */
    void copyKeyObjects(ObjectTarget from, ObjectTarget to) {
        if (master == null) {
            return;
        }
        for (String k : from.list(ObjectKeys.KEYS)) {
            from.get(k).ifPresent(bytes -> to.putIfAbsent(k, bytes));
        }
    }

    private static String putKeyObject(ObjectTarget target, WrappedKeys wrapped) {
        byte[] bytes = wrapped.toBytes();
        String key = ObjectKeys.keyObject(Digest.sha256(bytes));
        target.putIfAbsent(key, bytes);
        return key;
    }
}
