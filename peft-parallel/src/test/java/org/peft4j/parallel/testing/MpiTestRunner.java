package org.peft4j.parallel.testing;

import static org.junit.platform.engine.discovery.DiscoverySelectors.selectPackage;
import static org.junit.platform.launcher.TagFilter.includeTags;

import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;
import org.peft4j.parallel.comm.Communicator;
import org.peft4j.parallel.comm.MpiCommunicator;

import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;

/**
 * The main class of each rank that {@link MpiLauncher} starts: runs the tests tagged {@code mpi} of
 * a package with JUnit and prints one summary line per rank, {@code MPI-RANK r: found f, succeeded
 * s, failed x, skipped k}. Exits with 1 if a test failed or none was found.
 */
public final class MpiTestRunner {

    private MpiTestRunner() {}

    /**
     * Runs the tests.
     *
     * @param args the package whose {@code mpi} tests to run
     */
    public static void main(String[] args) {
        Communicator world = MpiCommunicator.world();
        LauncherDiscoveryRequest request =
                LauncherDiscoveryRequestBuilder.request()
                        .selectors(selectPackage(args[0]))
                        .filters(includeTags("mpi"))
                        .build();
        Launcher launcher = LauncherFactory.create();
        SummaryGeneratingListener listener = new SummaryGeneratingListener();
        launcher.execute(request, listener);
        TestExecutionSummary summary = listener.getSummary();
        PrintWriter out =
                new PrintWriter(new java.io.OutputStreamWriter(System.out, StandardCharsets.UTF_8));
        summary.printFailuresTo(out, 30);
        out.printf(
                "MPI-RANK %d: found %d, succeeded %d, failed %d, skipped %d%n",
                world.getRank(),
                summary.getTestsFoundCount(),
                summary.getTestsSucceededCount(),
                summary.getTotalFailureCount(),
                summary.getTestsSkippedCount() + summary.getTestsAbortedCount());
        out.flush();
        boolean ok = summary.getTotalFailureCount() == 0 && summary.getTestsFoundCount() > 0;
        world.close();
        System.exit(ok ? 0 : 1);
    }
}
