using System.Buffers.Binary;
using System.Security.Cryptography;
using Vae.ML.Persistence;

namespace Vae.ML.Tests.Persistence;

/// <summary>
/// The one low-level reader of every format: exact positions in its messages, the running hash, reads that arrive in
/// odd-sized pieces, and growth with the bytes that actually arrive. Surviving Stryker mutants asked for each case
/// (docs/testing.md, "Mutation testing"); the expected numbers are worked out by hand from the byte counts.
/// </summary>
public class ExactReaderTests
{
    [Fact]
    public void A_short_read_names_the_source_the_absolute_position_and_the_missing_byte_count()
    {
        // 10 bytes after 100 read elsewhere: two uint32 (8 bytes), then a 4-byte field with only 2 bytes left.
        var reader = new ExactReader(new MemoryStream(new byte[10]), "src", bytesBefore: 100);
        reader.ReadUInt32("a").Should().Be(0);
        reader.ReadUInt32("b").Should().Be(0);
        reader.BytesRead.Should().Be(108);

        var read = () => reader.ReadExactly(new byte[4], "the field");

        read.Should().Throw<InvalidDataException>()
            .WithMessage("src is truncated: it ends after 110 bytes, in the middle of the field (2 more bytes expected).");
    }

    [Fact]
    public void Integers_are_little_endian()
    {
        var reader = new ExactReader(new MemoryStream([1, 2, 3, 4, 5, 6, 7, 8, 0xFF, 0, 0, 0]), "src");

        reader.ReadUInt64("length").Should().Be(0x0807060504030201UL);
        reader.ReadUInt32("count").Should().Be(255u);
        reader.BytesRead.Should().Be(12);
    }

    [Fact]
    public void ReadBytes_and_ReadFloats_report_positions_counted_from_the_bytes_before()
    {
        var bytes = new ExactReader(new MemoryStream(new byte[6]), "src", bytesBefore: 50);
        var readBytes = () => bytes.ReadBytes(9, "the blob");
        readBytes.Should().Throw<InvalidDataException>()
            .WithMessage("src is truncated: it ends after 56 bytes, in the middle of the blob (3 more bytes expected).");

        var floats = new ExactReader(new MemoryStream(new byte[6]), "src", bytesBefore: 50);
        var readFloats = () => floats.ReadFloats(3, "the tensor");
        readFloats.Should().Throw<InvalidDataException>()
            .WithMessage("src is truncated: it ends after 56 bytes, in the middle of the tensor (6 more bytes expected).");
    }

    [Fact]
    public void Values_arriving_a_few_bytes_at_a_time_are_read_whole_and_hashed_once()
    {
        var values = new[] { 1.5f, -2.25f, 3e-7f, float.MaxValue, 0f, 42f, -0f };
        var payload = new byte[values.Length * 4 + 5];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(payload.AsSpan(i * 4), values[i]);
        }

        payload[^5] = 7;
        payload[^1] = 9;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var reader = new ExactReader(new TrickleStream(payload, 3), "src", hash);

        reader.ReadFloats(values.Length, "floats").Select(BitConverter.SingleToInt32Bits)
            .Should().Equal(values.Select(BitConverter.SingleToInt32Bits));
        reader.ReadBytes(2, "two bytes").Should().Equal(7, 0);
        var exact = new byte[1];
        reader.ReadUpTo(exact).Should().Be(1, "a buffer filled completely asks the stream for nothing more");
        exact.Should().Equal(0);
        var rest = new byte[8];
        reader.ReadUpTo(rest).Should().Be(2);
        rest.Should().Equal(0, 9, 0, 0, 0, 0, 0, 0);
        reader.BytesRead.Should().Be(payload.Length);
        hash.GetHashAndReset().Should().Equal(SHA256.HashData(payload));
    }

    [Fact]
    public void A_huge_claimed_count_grows_only_with_the_bytes_that_arrive()
    {
        // 300,000 bytes present, a billion claimed: the arrays double from 64 KiB / 16 Ki floats and stop at the
        // first power of two above what arrived, so well under 4 MB are allocated before the truncation is found.
        var present = new byte[300_000];
        var before = GC.GetAllocatedBytesForCurrentThread();
        var readBytes = () => new ExactReader(new MemoryStream(present), "src").ReadBytes(1_000_000_000, "the blob");
        readBytes.Should().Throw<InvalidDataException>().WithMessage("src is truncated: it ends after 300000 bytes, *");
        var readFloats = () => new ExactReader(new MemoryStream(present), "src").ReadFloats(250_000_000, "the tensor");
        readFloats.Should().Throw<InvalidDataException>().WithMessage("src is truncated: it ends after 300000 bytes, *");
        (GC.GetAllocatedBytesForCurrentThread() - before).Should().BeLessThan(4_000_000);
    }

    [Fact]
    public void The_largest_array_is_still_attempted_and_one_more_is_refused()
    {
        var atLimit = () => new ExactReader(new MemoryStream(new byte[4]), "src").ReadBytes(Array.MaxLength, "the blob");
        atLimit.Should().Throw<InvalidDataException>().WithMessage("src is truncated: *");
        var floatsAtLimit = () => new ExactReader(new MemoryStream(new byte[4]), "src").ReadFloats(Array.MaxLength, "the tensor");
        floatsAtLimit.Should().Throw<InvalidDataException>().WithMessage("src is truncated: *");

        var beyond = () => new ExactReader(new MemoryStream(new byte[4]), "src").ReadBytes(Array.MaxLength + 1L, "the blob");
        beyond.Should().Throw<InvalidDataException>().WithMessage("src: the blob claims * bytes, more than one array can hold.");
        var floatsBeyond = () => new ExactReader(new MemoryStream(new byte[4]), "src").ReadFloats(Array.MaxLength + 1L, "the tensor");
        floatsBeyond.Should().Throw<InvalidDataException>().WithMessage("src: the tensor claims * values, more than one array can hold.");
    }

    /// <summary>Returns at most <c>chunk</c> bytes per read, as a network or zip stream may.</summary>
    private sealed class TrickleStream(byte[] data, int chunk) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            // A zero-byte read blocks until data arrives on a network stream: the reader must never issue one.
            buffer.Length.Should().BePositive();
            var n = Math.Min(Math.Min(chunk, buffer.Length), data.Length - _position);
            data.AsSpan(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
