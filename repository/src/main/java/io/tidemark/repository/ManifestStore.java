package io.tidemark.repository;

import io.tidemark.core.CorruptObjectException;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.ManifestCodec;
import io.tidemark.format.MasterKeys;
import io.tidemark.format.ObjectCodec;
import io.tidemark.format.ObjectKeys;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The manifests of a repository ({@code manifests/<vm>/<id>}), one per restore point, written last
 * and never changed: JSON, or JSON in the object framing when the repository is encrypted. A
 * manifest read once is kept in memory (they are immutable); a manifest that cannot be read never
 * hides the readable ones. Thread-safe.
 */
final class ManifestStore {

    private static final Logger log = LoggerFactory.getLogger(Repository.class);

    private final ObjectTarget target;
    /** Null when the repository is not encrypted. */
    private final MasterKeys keys;
    /** Manifests are immutable, so a read one can be kept. */
    private final Map<String, Manifest> cache = new ConcurrentHashMap<>();
    /** The unreadable manifests already logged, so a long-running engine warns once per object. */
    private final Set<String> warned = ConcurrentHashMap.newKeySet();

    ManifestStore(ObjectTarget target, MasterKeys keys) {
        this.target = target;
        this.keys = keys;
    }

    /** Writes {@code m} unless it exists; the caller has made everything it references durable. */
    void put(Manifest m) {
        String key = ObjectKeys.manifest(m.vm(), m.id());
        target.putIfAbsent(key, encode(key, m));
        cache.put(key, m);
    }

    Optional<byte[]> stored(String vm, String id) {
        String key = ObjectKeys.manifest(vm, id);
        return target.get(key).map(bytes -> {
            decode(key, bytes);
            return bytes;
        });
    }

    /** Whether {@code key} names a manifest (and not a content-addressed object). */
    static boolean isManifestKey(String key) {
        return key.startsWith(ObjectKeys.MANIFESTS);
    }

    Manifest decode(String key, byte[] bytes) {
        return ManifestCodec.decode(key, keys == null ? bytes : ObjectCodec.decodeNamed(key, bytes, keys));
    }

    private byte[] encode(String key, Manifest m) {
        byte[] json = ManifestCodec.encode(m);
        return keys == null ? json : ObjectCodec.encode(json, json.length, key, keys);
    }

    List<String> vms() {
        List<String> vms = new ArrayList<>();
        for (String key : target.list(ObjectKeys.MANIFESTS)) {
            String rest = key.substring(ObjectKeys.MANIFESTS.length());
            int slash = rest.indexOf('/');
            if (slash > 0) {
                String vm = rest.substring(0, slash);
                if (vms.isEmpty() || !vms.get(vms.size() - 1).equals(vm)) {
                    vms.add(vm);
                }
            }
        }
        return vms;
    }

    Repository.Listing listing(String vm) {
        List<Manifest> out = new ArrayList<>();
        List<Repository.UnreadableManifest> unreadable = new ArrayList<>();
        for (String key : target.list(ObjectKeys.manifestPrefix(vm))) {
            String id = ObjectKeys.restorePointIdOf(key);
            // a listing can name a manifest a moment before it can be read (seen on S3Proxy) or
            // after prune removed it: only a manifest that can be read is a restore point
            if (id == null) {
                continue;
            }
            try {
                manifest(vm, id).ifPresent(out::add);
            } catch (CorruptObjectException e) {
                unreadable.add(new Repository.UnreadableManifest(vm, id, key, e.getMessage()));
            }
        }
        out.sort(Comparator.comparing(Manifest::id));
        return new Repository.Listing(out, unreadable);
    }

    List<Manifest> manifests(String vm) {
        Repository.Listing listing = listing(vm);
        for (Repository.UnreadableManifest u : listing.unreadable()) {
            if (warned.add(u.key())) {
                log.warn(
                        "restore point {} of VM {} in {} is unreadable and left out: {}",
                        u.id(),
                        vm,
                        target.describe(),
                        u.reason());
            }
        }
        return listing.points();
    }

    Optional<Manifest> manifest(String vm, String id) {
        String key = ObjectKeys.manifest(vm, id);
        Manifest cached = cache.get(key);
        if (cached != null) {
            return Optional.of(cached);
        }
        return target.get(key).map(bytes -> {
            Manifest m = decode(key, bytes);
            cache.put(key, m);
            return m;
        });
    }

    boolean has(String vm, String id) {
        return cache.containsKey(ObjectKeys.manifest(vm, id)) || target.exists(ObjectKeys.manifest(vm, id));
    }
}
