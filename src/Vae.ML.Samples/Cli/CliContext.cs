using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace Vae.ML.Samples.Cli;

/// <summary>Where the commands write and how (live progress or plain lines).</summary>
/// <param name="Console">Live output on an interactive terminal (progress bar).</param>
/// <param name="Out">Plain output when not interactive (no wrapping, no markup).</param>
/// <param name="Error">Error messages.</param>
/// <param name="Interactive">Whether a live progress bar may be drawn (false when redirected or in CI).</param>
/// <param name="CommandLine">The command as typed, recorded in report.md so that the report can be rerun.</param>
internal sealed record CliContext(IAnsiConsole Console, TextWriter Out, TextWriter Error, bool Interactive, string CommandLine)
{
    /// <summary>The process's own console: live progress only when stdout is a terminal that Spectre considers interactive.</summary>
    public static CliContext ForProcess(IReadOnlyList<string> args) => new(
        AnsiConsole.Console,
        System.Console.Out,
        System.Console.Error,
        AnsiConsole.Profile.Capabilities.Interactive && !System.Console.IsOutputRedirected,
        FormatCommandLine(args));

    /// <summary>A non-interactive, colourless context writing into <paramref name="output"/> (tests, embedding).</summary>
    public static CliContext ForWriter(TextWriter output, TextWriter error, IReadOnlyList<string> args) => new(
        AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        }),
        output,
        error,
        false,
        FormatCommandLine(args));

    /// <summary>A logger that writes informational messages (e.g. where MNIST came from) as plain console lines.</summary>
    public ILogger Logger => new ConsoleLineLogger(this);

    /// <summary>
    /// Writes one line: through Spectre on an interactive terminal (so that it appears above a live progress bar),
    /// else verbatim, because Spectre wraps redirected output at 80 columns.
    /// </summary>
    public void WriteLine(string line)
    {
        if (Interactive)
        {
            Console.WriteLine(line);
        }
        else
        {
            Out.WriteLine(line);
        }
    }

    /// <summary><c>vae-ml</c> followed by the arguments, quoted where needed.</summary>
    public static string FormatCommandLine(IReadOnlyList<string> args) =>
        string.Join(" ", new[] { "vae-ml" }.Concat(args.Select(a => a.Length == 0 || a.Any(char.IsWhiteSpace) ? $"\"{a}\"" : a)));

    private sealed class ConsoleLineLogger(CliContext context) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                string prefix = logLevel >= LogLevel.Warning ? $"{logLevel.ToString().ToLowerInvariant()}: " : "";
                context.WriteLine(prefix + formatter(state, exception));
            }
        }
    }
}
