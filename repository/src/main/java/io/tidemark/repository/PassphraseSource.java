package io.tidemark.repository;

import io.tidemark.core.PermanentException;
import io.tidemark.format.Passphrase;

/**
 * Where the passphrase of an encrypted repository comes from. It is asked only when the repository
 * being opened is encrypted, so an unencrypted repository opens without one.
 */
@FunctionalInterface
public interface PassphraseSource {

    /**
     * The passphrase for the repository at {@code location} (a {@code describe()} text).
     *
     * @throws PermanentException when there is none, saying where to put it
     */
    Passphrase passphrase(String location);

    /** No passphrase: opening an encrypted repository fails with a message saying how to give one. */
    PassphraseSource NONE = location -> {
        throw new PermanentException("repository " + location + " is encrypted: give its passphrase in the"
                + " environment variable TIDEMARK_PASSPHRASE or in a file (--passphrase-file, or passphraseFile"
                + " in the engine config)");
    };

    /** Always {@code passphrase}. */
    static PassphraseSource of(Passphrase passphrase) {
        return location -> passphrase;
    }
}
