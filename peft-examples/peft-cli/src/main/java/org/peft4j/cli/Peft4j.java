package org.peft4j.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code peft4j} command line. */
@Command(
        name = "peft4j",
        mixinStandardHelpOptions = true,
        versionProvider = Version.class,
        description = "Parameter-efficient fine-tuning (LoRA, prefix tuning) on DJL.",
        subcommands = {
            FinetuneCommand.class,
            GenerateCommand.class,
            TemplateCommand.class,
            MergeCommand.class,
            MergeAdaptersCommand.class,
            ConvertCommand.class,
            EvalCommand.class,
            InitCommand.class,
            StoriesCommand.class,
            BenchCommand.class,
            QuickstartCommand.class
        })
public final class Peft4j implements Runnable {

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    /** Creates the command; picocli calls this. */
    public Peft4j() {}

    /**
     * Runs the command line and exits with its status.
     *
     * @param args the arguments
     */
    public static void main(String[] args) {
        System.exit(run(args));
    }

    /**
     * Runs the command line.
     *
     * @param args the arguments
     * @return the exit status: 0 on success, 1 on an error (whose message went to standard error),
     *     2 on a usage error
     */
    public static int run(String... args) {
        if (System.getProperty("OPT_OUT_TRACKING") == null) {
            // DJL's tokenizer binding reports usage over the network unless told not to; a
            // command-line tool should not phone home.
            System.setProperty("OPT_OUT_TRACKING", "true");
        }
        MallocTuning.apply();
        CommandLine commandLine = new CommandLine(new Peft4j());
        commandLine.setExecutionExceptionHandler(
                (e, cmd, parsed) -> {
                    cmd.getErr().println("peft4j " + cmd.getCommandName() + ": " + describe(e));
                    return 1;
                });
        return commandLine.execute(args);
    }

    private static String describe(Throwable e) {
        String message = e.getMessage();
        if (message == null || message.isEmpty()) {
            message = e.getClass().getSimpleName();
        }
        return message;
    }

    /** {@inheritDoc} */
    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }
}
