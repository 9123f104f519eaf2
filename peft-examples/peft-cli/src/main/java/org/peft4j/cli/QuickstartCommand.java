package org.peft4j.cli;

import org.peft4j.cli.quickstart.LoRAQuickstart;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.concurrent.Callable;

/** {@code peft4j quickstart}: the README's five steps on a small network. */
@Command(
        name = "quickstart",
        mixinStandardHelpOptions = true,
        description = "Pretrain a small network, adapt it with LoRA, save, load and merge.")
public final class QuickstartCommand implements Callable<Integer> {

    @Option(
            names = "--output",
            description = "Where to save the adapter (default: ${DEFAULT-VALUE}).",
            defaultValue = "target/quickstart-adapter")
    Path output = Paths.get("target/quickstart-adapter");

    @Option(
            names = "--seed",
            description = "Random seed (default: ${DEFAULT-VALUE}).",
            defaultValue = "42")
    int seed;

    /** Creates the command; picocli calls this. */
    public QuickstartCommand() {}

    /** {@inheritDoc} */
    @Override
    public Integer call() throws Exception {
        LoRAQuickstart.Result result = new LoRAQuickstart(System.out).run(output, seed);
        return result.adaptedLossOnB() < 0.5f * result.baseLossOnB() ? 0 : 1;
    }
}
