namespace Vae.ML.Persistence;

/// <summary>
/// Writes a file so that readers see either the old or the complete new content: the bytes go to a temporary file in
/// the same directory (same file system), which is flushed to disk and then renamed over the target. A crash, a full
/// disk or an exception while writing leaves the previous file untouched and no temporary file behind. This is the one
/// place Vae.ML writes files from; every save path (model, ML.NET zip, checkpoint) goes through it.
/// </summary>
internal static class AtomicFile
{
    /// <summary>
    /// Wraps the temporary file's stream, for the current async flow only: tests put a stream there that fails at a
    /// chosen byte, the way a full disk would, to check every save path under fault.
    /// </summary>
    private static readonly AsyncLocal<Func<Stream, Stream>?> StreamWrapper = new();

    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(write);
        var fullPath = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(fullPath)
            ?? throw new ArgumentException($"'{path}' names no file.", nameof(path));
        if (Directory.Exists(fullPath))
        {
            throw new IOException($"Cannot save to '{fullPath}': it is a directory.");
        }

        var temporary = Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
            {
                var stream = new FaultRecordingStream(StreamWrapper.Value?.Invoke(file) ?? file);
                write(stream);
                stream.Flush();
                stream.RethrowFault();
                file.Flush(flushToDisk: true);
            }

            File.Move(temporary, fullPath, overwrite: true);
        }
        catch (IOException e) when (!e.Message.Contains(fullPath, StringComparison.Ordinal))
        {
            TryDelete(temporary);
            // ENOSPC names the temporary file at best; the caller needs to know which save failed.
            throw new IOException($"Could not save '{fullPath}' ({e.Message}); any previous file there is unchanged.", e);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
    }

    /// <summary>Makes <see cref="Write"/> pass its stream through <paramref name="wrap"/> in this async flow until disposed (tests only).</summary>
    internal static IDisposable InterceptStreams(Func<Stream, Stream> wrap)
    {
        var previous = StreamWrapper.Value;
        StreamWrapper.Value = wrap;
        return new Restore(() => StreamWrapper.Value = previous);
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // The original error matters more than a leftover temporary file.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>
    /// Remembers the first write error. Some writers swallow errors (with ML.NET 5.0.1, <c>mlContext.Model.Save</c>
    /// returned normally when the stream failed while the zip's last bytes were written; SaveFaultTests catches it): a
    /// write that failed must never be renamed over the previous file as if it were complete.
    /// </summary>
    private sealed class FaultRecordingStream(Stream inner) : Stream
    {
        private Exception? _fault;

        public override bool CanRead => false;

        public override bool CanSeek => inner.CanSeek;

        public override bool CanWrite => true;

        public override long Length => inner.Length;

        public override long Position { get => inner.Position; set => Record(() => inner.Position = value); }

        public void RethrowFault()
        {
            if (_fault is not null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(_fault);
            }
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            try
            {
                inner.Write(buffer);
            }
            catch (Exception e)
            {
                _fault ??= e;
                throw;
            }
        }

        public override void Flush() => Record(inner.Flush);

        public override long Seek(long offset, SeekOrigin origin)
        {
            long result = 0;
            Record(() => result = inner.Seek(offset, origin));
            return result;
        }

        public override void SetLength(long value) => Record(() => inner.SetLength(value));

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        private void Record(Action action)
        {
            try
            {
                action();
            }
            catch (Exception e)
            {
                _fault ??= e;
                throw;
            }
        }
    }

    private sealed class Restore(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }
}
