using Vae.ML.Samples.Cli;

namespace Vae.ML.Samples;

internal static class Program
{
    private static Task<int> Main(string[] args) => VaeCli.RunAsync(args, CliContext.ForProcess(args));
}
