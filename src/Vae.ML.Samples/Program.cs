using Vae.ML.Samples.Cli;

namespace Vae.ML.Samples;

internal static class Program
{
    private static int Main(string[] args) => VaeCli.Run(args, CliContext.ForProcess(args));
}
