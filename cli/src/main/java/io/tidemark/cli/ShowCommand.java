package io.tidemark.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.Human;
import io.tidemark.core.InvalidInputException;
import io.tidemark.core.PermanentException;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.repository.PointMark;
import io.tidemark.core.repository.VmDefinition;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.engine.EngineConfig;
import io.tidemark.format.Json;
import io.tidemark.format.ObjectKeys;
import io.tidemark.policies.PolicyParser;
import io.tidemark.replicator.Pruner;
import io.tidemark.repository.PointFootprint;
import io.tidemark.repository.Repository;
import io.tidemark.repository.RestorePointSelector;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
        mixinStandardHelpOptions = true,
        name = "show",
        description = {
            "Show one restore point in full, and which locations hold it.",
            "",
            "Its VM, disks with their logical sizes and the bytes read and newly stored, its parent, why a disk",
            "was read in full, the consistency achieved (and why it is less than the policy wanted), its trigger",
            "and tags, its marks, the VM's definition as the backup saw it (machine, CPUs, memory, disks, NICs;",
            "in full with --definition), and which locations (local and each target of the engine config) hold it.",
            "Reads the repositories themselves, so it works while the engine is down.",
            "",
            "Example:",
            "  tidemark show 20261207T012233.123Z-3f9a --config /etc/tidemark/tidemark.yaml"
        })
final class ShowCommand implements Callable<Integer> {

    @Parameters(paramLabel = "POINT", description = "the restore point id (as `tidemark list` or `tidemark jobs` show)")
    String point;

    @Option(
            names = "--from",
            paramLabel = "LOCATION",
            description = "where to read it: local (default), a target of the engine config, a directory or s3://…")
    String from;

    @Option(names = "--json", description = "machine-readable output")
    boolean json;

    @Option(
            names = "--timeout",
            paramLabel = "DURATION",
            defaultValue = "20s",
            description = "how long each location may take to say whether it holds the point (default: 20s)")
    String timeout;

    @Option(
            names = "--stored",
            description = "also read the point's index and chunks at --from to tell what it occupies there, compressed"
                    + " (costs a read of the point's data)")
    boolean stored;

    @Option(
            names = "--definition",
            description = "print the VM's captured definition in full: libvirt's domain XML (secrets removed), or"
                    + " what QMP told as JSON")
    boolean definition;

    @Mixin
    EngineOptions engine;

    /** Whether one location holds the point, with its mark there; or why it could not be asked. */
    private record Held(String location, boolean holds, Optional<PointMark> mark, Optional<String> error) {}

    @Override
    public Integer call() throws Exception {
        Duration wait;
        try {
            wait = PolicyParser.parseDuration(timeout.strip());
        } catch (IllegalArgumentException e) {
            throw new InvalidInputException("--timeout '" + timeout + "' is not a duration such as 20s or 2m");
        }
        EngineConfig c = engine.engineConfig();
        List<AutoCloseable> opened = new ArrayList<>();
        ExecutorService asks = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "show-location");
            t.setDaemon(true);
            return t;
        });
        try {
            Repository primary = null;
            ObjectTarget primaryTarget = engine.primary(c);
            opened.add(primaryTarget);
            if (primaryTarget.exists(ObjectKeys.CONFIG)) {
                primary = Repository.open(primaryTarget, engine.passphrases(c));
            }
            String location = from == null ? Pruner.LOCAL : from;
            Repository source = open(location, c, primary, opened);
            Manifest m = find(source, location);
            Optional<PointFootprint> footprint = stored ? Optional.of(PointFootprint.of(source, m)) : Optional.empty();
            // every location of the engine config, asked in parallel, each bounded
            Map<String, Future<Held>> pending = new LinkedHashMap<>();
            Repository p = primary;
            if (p != null) {
                pending.put(Pruner.LOCAL, asks.submit(() -> held(Pruner.LOCAL, p, m)));
            }
            for (String name : c.targets().keySet()) {
                pending.put(name, asks.submit(() -> held(name, open(name, c, p, opened), m)));
            }
            List<Held> holders = new ArrayList<>();
            for (var e : pending.entrySet()) {
                holders.add(await(e.getKey(), e.getValue(), wait));
            }
            if (!pending.containsKey(location)) { // a location outside the engine config
                holders.add(held(location, source, m));
            }
            print(m, holders, footprint);
            return 0;
        } finally {
            asks.shutdownNow();
            for (AutoCloseable t : opened) {
                t.close();
            }
        }
    }

    /**
     * The repository at {@code location}: the primary for {@code local}, a target of the engine config
     * by name (read with the primary's keys when there is a primary), else a directory or URL.
     */
    private Repository open(String location, EngineConfig c, Repository primary, List<AutoCloseable> opened) {
        if (location.equals(Pruner.LOCAL)) {
            if (primary == null) {
                throw new PermanentException("there is no primary repository at " + c.primary()
                        + "; pass --data or --config, or --from a target");
            }
            return primary;
        }
        ObjectTarget t = engine.source(c, location); // a target by name, a directory or a URL, as list and restore
        synchronized (opened) {
            opened.add(t);
        }
        return primary != null ? primary.replicaView(t) : Repository.open(t, engine.passphrases(c));
    }

    /** The point's manifest, whichever VM it belongs to. */
    private Manifest find(Repository repo, String location) {
        for (String vm : repo.vms()) {
            Optional<Manifest> m = repo.manifest(vm, point);
            if (m.isPresent()) {
                return m.get();
            }
        }
        throw new PermanentException("no restore point '" + point + "' at " + location + " (" + repo.describe()
                + "); list the points with `tidemark list --from " + location + "` or `tidemark jobs`");
    }

    private static Held held(String location, Repository repo, Manifest m) {
        boolean holds = repo.hasManifest(m.vm(), m.id());
        Optional<PointMark> mark =
                holds ? Optional.ofNullable(repo.marks(m.vm()).get(m.id())) : Optional.empty();
        return new Held(location, holds, mark, Optional.empty());
    }

    private static Held await(String location, Future<Held> f, Duration wait) throws InterruptedException {
        try {
            return f.get(wait.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            f.cancel(true);
            return new Held(
                    location,
                    false,
                    Optional.empty(),
                    Optional.of("did not answer within " + wait.toSeconds() + " s (raise --timeout)"));
        } catch (ExecutionException e) {
            return new Held(
                    location,
                    false,
                    Optional.empty(),
                    Optional.of(String.valueOf(e.getCause().getMessage())));
        }
    }

    private void print(Manifest m, List<Held> holders, Optional<PointFootprint> footprint) throws java.io.IOException {
        if (json) {
            ObjectNode o = Json.mapper().valueToTree(m);
            if (!definition && o.get("definition") instanceof ObjectNode d) {
                d.remove("domainXml"); // long: only with --definition
            }
            o.put("sizeBytes", m.sizeBytes());
            o.put("bytesRead", m.bytesRead());
            o.put("bytesNew", m.bytesNew());
            o.put("incremental", m.incremental());
            RestorePointSelector.tag(m).ifPresent(t -> o.put("tag", t));
            footprint.ifPresent(f -> o.set("footprint", Json.mapper().valueToTree(f)));
            ArrayNode locations = o.putArray("locations");
            for (Held h : holders) {
                ObjectNode n = locations.addObject();
                n.put("location", h.location());
                if (h.error().isPresent()) {
                    n.put("error", h.error().get());
                } else {
                    n.put("holds", h.holds());
                }
                h.mark().ifPresent(k -> n.set("mark", Json.mapper().valueToTree(k)));
            }
            System.out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(o));
            return;
        }
        System.out.printf("restore point  %s%n", m.id());
        System.out.printf("vm             %s (host %s)%n", m.vm(), m.host());
        System.out.printf("captured       %s (committed %s)%n", m.capturedAt(), m.committedAt());
        System.out.printf(
                "consistency    %s%s%n",
                m.consistency().spelling(),
                m.consistencyReason().map(r -> " — " + r).orElse(""));
        System.out.printf(
                "trigger        %s%s%n",
                m.trigger().kind().spelling(),
                m.trigger().sortedAttributes().entrySet().stream()
                        .map(e -> " " + e.getKey() + "=" + e.getValue())
                        .reduce("", String::concat));
        RestorePointSelector.tag(m).ifPresent(t -> System.out.printf("tag            %s%n", t));
        System.out.printf("policy         %s%n", m.policy());
        System.out.printf("job            %s%n", m.jobId());
        System.out.printf(
                "kind           %s%n",
                m.incremental() ? "incremental of " + m.parent().orElse("?") : "full");
        m.parent().filter(p -> !m.incremental()).ifPresent(p -> System.out.printf("parent         %s%n", p));
        System.out.printf(
                "size           %s logical, %s read, %s new in the repository (before compression)%n",
                Human.bytes(m.sizeBytes()), Human.bytes(m.bytesRead()), Human.bytes(m.bytesNew()));
        footprint.ifPresent(f -> System.out.printf(
                "stored         %s as stored objects (compressed) for %s of data in %d distinct chunks, shared"
                        + " with other points or not%s%n",
                Human.bytes(f.storedBytes()),
                Human.bytes(f.logicalBytes()),
                f.chunks(),
                f.missing() > 0 ? "; " + f.missing() + " chunks MISSING: run `tidemark verify`" : ""));
        System.out.printf("%ndisks%n");
        System.out.printf("  %-16s %10s %10s %10s %8s  %s%n", "NAME", "SIZE", "READ", "NEW", "CHUNK", "READ IN FULL");
        for (DiskEntry d : m.disks()) {
            System.out.printf(
                    "  %-16s %10s %10s %10s %8s  %s%n",
                    d.name(),
                    Human.bytes(d.sizeBytes()),
                    Human.bytes(d.bytesRead()),
                    Human.bytes(d.bytesNew()),
                    Human.bytes(d.chunkSize()),
                    d.fullReason().map(FullReason::detail).orElse("no (changed extents only)"));
        }
        printDefinition(m);
        System.out.printf("%nlocations%n");
        for (Held h : holders) {
            System.out.printf(
                    "  %-16s %s%s%n",
                    h.location(),
                    h.error().map(e -> "UNREACHABLE: " + e).orElse(h.holds() ? "holds it" : "does not hold it"),
                    h.mark()
                            .map(k -> "; " + k.kind().name().toLowerCase(Locale.ROOT) + " at " + k.at() + ": "
                                    + k.reason())
                            .orElse(""));
        }
    }

    private void printDefinition(Manifest m) throws java.io.IOException {
        System.out.printf("%ndefinition%n");
        if (m.definition().isEmpty()) {
            System.out.printf("  none captured (a point written before Tidemark recorded definitions, or the hypervisor"
                    + " did not tell); a failover uses the plan's settings%n");
            return;
        }
        VmDefinition d = m.definition().get();
        System.out.printf("  %s%n", d.summary());
        for (VmDefinition.Disk disk : d.disks()) {
            System.out.printf(
                    "  disk %-10s bus %s%s%s%s%n",
                    disk.name(),
                    disk.bus(),
                    disk.device().map(x -> ", " + x).orElse(""),
                    disk.serial().map(x -> ", serial " + x).orElse(""),
                    disk.format().map(x -> ", " + x).orElse(""));
        }
        for (VmDefinition.Nic nic : d.nics()) {
            System.out.printf(
                    "  nic  %-10s %s %s%s%n",
                    nic.id(),
                    nic.mac(),
                    nic.model(),
                    nic.network().map(x -> " on " + x).orElse(""));
        }
        if (!d.redacted().isEmpty()) {
            System.out.printf("  secrets removed: %s%n", String.join(", ", d.redacted()));
        }
        if (definition) {
            System.out.println();
            System.out.println(d.domainXml()
                    .orElse(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(d)));
        } else {
            System.out.printf("  (in full: --definition)%n");
        }
    }
}
