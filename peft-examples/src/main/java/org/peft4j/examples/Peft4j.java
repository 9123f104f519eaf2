package org.peft4j.examples;

import org.peft4j.examples.quickstart.LoRAQuickstart;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.concurrent.Callable;

/** The {@code peft4j} command line. */
@Command(
        name = "peft4j",
        mixinStandardHelpOptions = true,
        version = "peft4j 0.1.0",
        description = "Parameter-efficient fine-tuning (LoRA, prefix tuning) on DJL.",
        subcommands = {Peft4j.Quickstart.class})
public final class Peft4j implements Runnable {

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    /** Creates the command; picocli calls this. */
    public Peft4j() {}

    /**
     * Runs the command line.
     *
     * @param args the arguments
     */
    public static void main(String[] args) {
        System.exit(new CommandLine(new Peft4j()).execute(args));
    }

    /** {@inheritDoc} */
    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    /** {@code peft4j quickstart}: the README's five steps on a small network. */
    @Command(
            name = "quickstart",
            mixinStandardHelpOptions = true,
            description = "Pretrain a small network, adapt it with LoRA, save, load and merge.")
    public static final class Quickstart implements Callable<Integer> {

        @Option(
                names = "--output",
                description = "Where to save the adapter (default: ${DEFAULT-VALUE}).",
                defaultValue = "target/quickstart-adapter")
        Path output = Paths.get("target/quickstart-adapter");

        @Option(names = "--seed", description = "Random seed.", defaultValue = "42")
        int seed;

        /** Creates the command; picocli calls this. */
        public Quickstart() {}

        /** {@inheritDoc} */
        @Override
        public Integer call() throws Exception {
            LoRAQuickstart.Result result = new LoRAQuickstart(System.out).run(output, seed);
            return result.adaptedLossOnB() < 0.5f * result.baseLossOnB() ? 0 : 1;
        }
    }
}
