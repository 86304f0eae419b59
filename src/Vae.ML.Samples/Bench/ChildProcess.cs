using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Vae.ML.Samples.Bench;

/// <summary>What a finished child process left behind.</summary>
/// <param name="ExitCode">Its exit code.</param>
/// <param name="PeakRssMegabytes">Its peak resident set (VmHWM), or null where /proc is not available.</param>
/// <param name="Output">Its standard output.</param>
/// <param name="Error">The end of its standard error.</param>
internal sealed record ChildResult(int ExitCode, double? PeakRssMegabytes, string Output, string Error);

/// <summary>Runs a whole process as a child and reads its peak memory: the only honest peak RSS of a complete run.</summary>
internal static class ChildProcess
{
    /// <summary>How often the child's high-water mark is read; only a peak in its last such interval could be missed.</summary>
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(20);

    /// <summary>
    /// Runs <paramref name="fileName"/> with <paramref name="arguments"/> to its end (killed after
    /// <paramref name="timeout"/>) and returns its exit code, output and the largest VmHWM read from
    /// /proc/&lt;pid&gt;/status while it ran (the kernel's own peak, so the polling only has to see it once after the peak).
    /// </summary>
    public static ChildResult Run(string fileName, IEnumerable<string> arguments, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start '{fileName}'.");
        var output = new StringBuilder();
        var error = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (error) { error.AppendLine(e.Data); } } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        double? peak = null;
        var clock = Stopwatch.StartNew();
        string status = $"/proc/{process.Id}/status";
        while (!process.WaitForExit(PollInterval))
        {
            if (ReadPeakMegabytes(status) is double now)
            {
                peak = Math.Max(peak ?? 0, now);
            }

            if (clock.Elapsed > timeout || cancellationToken.IsCancellationRequested)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
                cancellationToken.ThrowIfCancellationRequested();
                throw new TimeoutException($"'{fileName} {string.Join(' ', start.ArgumentList)}' ran longer than {timeout.TotalSeconds:0} s and was stopped.");
            }
        }

        process.WaitForExit();
        string tail = error.ToString();
        return new ChildResult(process.ExitCode, peak, output.ToString(), tail.Length > 2000 ? tail[^2000..] : tail);
    }

    /// <summary>VmHWM of a /proc status file in MB (1 MB = 2^20 bytes), or null when it cannot be read.</summary>
    public static double? ReadPeakMegabytes(string statusPath)
    {
        try
        {
            foreach (string line in File.ReadLines(statusPath))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    string kilobytes = line["VmHWM:".Length..].Trim().Split(' ')[0];
                    return double.Parse(kilobytes, CultureInfo.InvariantCulture) / 1024;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            // The process ended between two reads, or this is not Linux.
        }

        return null;
    }

    /// <summary>
    /// How to start this CLI again as a child: the .NET host with vae-ml.dll (works from the CLI itself and from a
    /// test host that references it).
    /// </summary>
    public static (string FileName, string[] Prefix) SelfCommand()
    {
        string dll = typeof(ChildProcess).Assembly.Location;
        string? host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (string.IsNullOrEmpty(host) || !File.Exists(host))
        {
            string? current = Environment.ProcessPath;
            host = current is not null && Path.GetFileNameWithoutExtension(current) == "dotnet" ? current : "dotnet";
        }

        return (host, [dll]);
    }
}
