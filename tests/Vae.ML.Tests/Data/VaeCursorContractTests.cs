using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Tests.Core;
using Vae.ML.Tests.Reliability;

namespace Vae.ML.Tests.Data;

/// <summary>
/// The scored view's, its cursor's and the row mapper's side of ML.NET's contracts (DataViewRowCursor, IDataView,
/// IRowToRowMapper): positions, row ids, active columns, what may be read when, and what is refused with which message.
/// Written for the Stryker run on Data/ (docs/testing.md, "Mutation testing"); the expected values come from the input
/// view or from the transformer's array API, never from the cursor under test.
/// </summary>
public class VaeCursorContractTests(ScoringModelFixture fixture) : IClassFixture<ScoringModelFixture>
{
    private readonly VaeTransformer _vae = fixture.Vae;

    /// <summary>Rows in reverse order, so a row's id (its index) differs from the cursor's position.</summary>
    private static RowSource Reversed(SyntheticData.Row[] rows)
        => RowSource.Of(rows, _ => Enumerable.Range(0, rows.Length).Reverse().Select(i => (long)i));

    [Fact]
    public void A_scoring_cursor_counts_positions_across_batches_and_keeps_each_rows_id()
    {
        // 1,500 rows: the cursor reads 1,024 rows ahead, so the second batch starts inside the loop.
        var rows = SyntheticData.Rows(1500, seed: 31);
        var scored = _vae.Transform(Reversed(rows));
        using var cursor = scored.GetRowCursor([scored.Schema["Index"], scored.Schema["Score"]]);
        var id = cursor.GetIdGetter();
        var index = cursor.GetGetter<long>(scored.Schema["Index"]);
        var score = cursor.GetGetter<float>(scored.Schema["Score"]);
        var value = 0f;
        var readTooEarly = () => score(ref value);
        readTooEarly.Should().Throw<InvalidOperationException>().WithMessage("The cursor is not on a row: call MoveNext first*");
        cursor.Position.Should().Be(-1);

        var expectedScores = _vae.Score(SyntheticData.Matrix(rows));
        var position = 0L;
        while (cursor.MoveNext())
        {
            var expectedIndex = rows.Length - 1 - position;
            cursor.Position.Should().Be(position);
            cursor.Batch.Should().Be(0);
            DataViewRowId rowId = default;
            id(ref rowId);
            rowId.Should().Be(new DataViewRowId((ulong)expectedIndex, 0), $"row id at position {position}");
            long i = 0;
            index(ref i);
            i.Should().Be(expectedIndex);
            if (position % 97 == 0 || position is 1023 or 1024 or 1499)
            {
                score(ref value);
                value.Should().BeApproximately(expectedScores[expectedIndex], 1e-3f, $"score of row {expectedIndex}");
            }

            position++;
        }

        position.Should().Be(1500);
        cursor.Position.Should().Be(1499, "like ML.NET's own cursors (the pass-through test below), the last position stays once MoveNext returned false");
        cursor.MoveNext().Should().BeFalse("the input stays finished");
        var readAfterTheEnd = () => score(ref value);
        readAfterTheEnd.Should().Throw<InvalidOperationException>().WithMessage("The cursor is not on a row*");
    }

    [Fact]
    public void A_scoring_cursor_serves_only_the_columns_it_was_asked_for_and_each_only_as_its_own_type()
    {
        var ml = fixture.Context;
        var data = SyntheticData.Load(ml, 20, seed: 32);
        var scored = _vae.Transform(data);
        var schema = scored.Schema;
        using var cursor = scored.GetRowCursor([schema["Label"], schema["Features"], schema["Score"]]);

        cursor.IsColumnActive(schema["Label"]).Should().BeTrue();
        cursor.IsColumnActive(schema["Features"]).Should().BeTrue();
        cursor.IsColumnActive(schema["Score"]).Should().BeTrue();
        cursor.IsColumnActive(schema["Latent"]).Should().BeFalse();
        cursor.IsColumnActive(schema["Reconstruction"]).Should().BeFalse();

        var label = () => cursor.GetGetter<float>(schema["Label"]);
        label.Should().Throw<InvalidOperationException>().WithMessage("Column 'Label' is UInt32; it cannot be read as System.Single.");
        var features = () => cursor.GetGetter<float[]>(schema["Features"]);
        features.Should().Throw<InvalidOperationException>().WithMessage("Column 'Features' is Vector<Single, 64>; it cannot be read as System.Single[].");
        var score = () => cursor.GetGetter<VBuffer<float>>(schema["Score"]);
        score.Should().Throw<InvalidOperationException>().WithMessage("Column 'Score' is Single; it cannot be read as *VBuffer*");
        var latent = () => cursor.GetGetter<VBuffer<float>>(schema["Latent"]);
        latent.Should().Throw<InvalidOperationException>().WithMessage("Column 'Latent' was not requested when the cursor was created.");

        // Pass-through values are the cursor's own copies: what the consumer does to its buffer changes nothing.
        var featureGetter = cursor.GetGetter<VBuffer<float>>(schema["Features"]);
        var rows = SyntheticData.Rows(20, seed: 32);
        VBuffer<float> buffer = default;
        while (cursor.MoveNext())
        {
            featureGetter(ref buffer);
            buffer.DenseValues().Should().Equal(rows[cursor.Position].Features);
            VBufferEditor.CreateFromBuffer(ref buffer).Values.Fill(-1f);
            featureGetter(ref buffer);
            buffer.DenseValues().Should().Equal(rows[cursor.Position].Features, "a second read gives the row again");
        }
    }

    [Fact]
    public void An_input_column_that_was_not_requested_is_refused_by_a_scoring_cursor()
    {
        var data = SyntheticData.Load(fixture.Context, 5, seed: 33);
        var scored = _vae.Transform(data);
        using var cursor = scored.GetRowCursor([scored.Schema["Latent"]]);

        cursor.IsColumnActive(scored.Schema["Label"]).Should().BeFalse();
        var label = () => cursor.GetGetter<uint>(scored.Schema["Label"]);
        label.Should().Throw<InvalidOperationException>().WithMessage("Column 'Label' was not requested when the cursor was created.");
    }

    [Fact]
    public void Without_an_output_column_the_cursor_is_the_input_cursor()
    {
        var rows = SyntheticData.Rows(30, seed: 34);
        var scored = _vae.Transform(Reversed(rows));
        using var cursor = scored.GetRowCursor([scored.Schema["Index"]]);

        cursor.IsColumnActive(scored.Schema["Index"]).Should().BeTrue("the source marks every column active");
        cursor.IsColumnActive(scored.Schema["Score"]).Should().BeFalse();
        var score = () => cursor.GetGetter<float>(scored.Schema["Score"]);
        score.Should().Throw<InvalidOperationException>().WithMessage("Column 'Score' was not requested when the cursor was created.");
        cursor.Position.Should().Be(-1);

        var id = cursor.GetIdGetter();
        var index = cursor.GetGetter<long>(scored.Schema["Index"]);
        var position = 0L;
        while (cursor.MoveNext())
        {
            cursor.Position.Should().Be(position);
            DataViewRowId rowId = default;
            id(ref rowId);
            rowId.Low.Should().Be((ulong)(29 - position));
            long i = 0;
            index(ref i);
            i.Should().Be(29 - position);
            position++;
        }

        position.Should().Be(30);
        cursor.Position.Should().Be(29, "ML.NET's own cursor (LoadFromEnumerable), passed through, keeps its last position once done");
    }

    [Fact]
    public void A_getter_made_in_the_middle_of_a_batch_reads_computed_values()
    {
        var rows = SyntheticData.Rows(10, seed: 35);
        var scored = _vae.Transform(fixture.Context.Data.LoadFromEnumerable(rows));
        using var cursor = scored.GetRowCursor([scored.Schema["Latent"], scored.Schema["Score"]]);
        var latent = cursor.GetGetter<VBuffer<float>>(scored.Schema["Latent"]);
        VBuffer<float> z = default;

        cursor.MoveNext().Should().BeTrue();
        latent(ref z); // computes the batch without a Score buffer
        cursor.MoveNext().Should().BeTrue();
        var score = cursor.GetGetter<float>(scored.Schema["Score"]);
        var s = 0f;
        score(ref s);

        s.Should().BeApproximately(_vae.Score(rows[1].Features)[0], 1e-3f);
        latent(ref z);
        z.DenseValues().Should().Equal(_vae.Encode(rows[1].Features), (a, b) => Math.Abs(a - b) < 1e-4f);
    }

    [Fact]
    public void The_scored_view_reports_the_inputs_row_count_and_shuffling_and_hands_out_one_cursor()
    {
        var rows = SyntheticData.Rows(12, seed: 36);
        var known = new KnownCountView(fixture.Context.Data.LoadFromEnumerable(rows), 12);
        var scored = _vae.Transform(known);
        scored.GetRowCount().Should().Be(12);
        scored.CanShuffle.Should().BeTrue();

        var unknown = _vae.Transform(RowSource.Of(rows));
        unknown.GetRowCount().Should().BeNull();
        unknown.CanShuffle.Should().BeFalse();

        var cursors = scored.GetRowCursorSet(scored.Schema, 3);
        cursors.Should().ContainSingle("each cursor already scores in batches");
        cursors[0].Dispose();
    }

    [Fact]
    public void The_row_mapper_maps_a_row_at_the_inputs_position_and_needs_only_the_feature_column_for_outputs()
    {
        var ml = fixture.Context;
        var rows = SyntheticData.Rows(6, seed: 37);
        var data = ml.Data.LoadFromEnumerable(rows);
        var mapper = _vae.GetRowToRowMapper(data.Schema);
        var output = mapper.OutputSchema;
        output.Select(c => c.Name).Should().Equal("Features", "Label", "Latent", "LatentLogVariance", "Reconstruction", "Score");

        mapper.GetDependencies([output["Score"]]).Select(c => c.Name).Should().Equal("Features");
        mapper.GetDependencies([output["Label"]]).Select(c => c.Name).Should().Equal("Label");
        mapper.GetDependencies([output["Reconstruction"], output["Label"], output["Latent"]]).Select(c => c.Name)
            .Should().Equal("Features", "Label");
        mapper.GetDependencies([]).Should().BeEmpty();

        using var input = data.GetRowCursor(data.Schema);
        using var row = mapper.GetRow(input, [output["Latent"]]);
        row.IsColumnActive(output["Latent"]).Should().BeTrue();
        row.IsColumnActive(output["Score"]).Should().BeFalse();
        row.IsColumnActive(output["Label"]).Should().BeTrue();
        var score = () => row.GetGetter<float>(output["Score"]);
        score.Should().Throw<InvalidOperationException>().WithMessage("Column 'Score' was not requested as active.");

        var latent = row.GetGetter<VBuffer<float>>(output["Latent"]);
        var label = row.GetGetter<uint>(output["Label"]);
        var rowId = row.GetIdGetter();
        var inputId = input.GetIdGetter();
        VBuffer<float> z = default;
        while (input.MoveNext())
        {
            row.Position.Should().Be(input.Position);
            row.Batch.Should().Be(input.Batch);
            DataViewRowId mapped = default, original = default;
            rowId(ref mapped);
            inputId(ref original);
            mapped.Should().Be(original);
            uint l = 0;
            label(ref l);
            l.Should().Be(rows[input.Position].Label);
            latent(ref z);
            z.DenseValues().Should().Equal(_vae.Encode(rows[input.Position].Features), (a, b) => Math.Abs(a - b) < 1e-4f);
        }
    }

    [Fact]
    public void A_cursor_read_to_the_end_warns_about_odd_rows_before_it_is_disposed()
    {
        var rows = SyntheticData.Rows(8, seed: 38);
        rows[3].Features[5] = float.NaN;
        var scored = _vae.Transform(fixture.Context.Data.LoadFromEnumerable(rows));
        fixture.TakeWarnings();

        var cursor = scored.GetRowCursor([scored.Schema["Score"]]);
        var score = cursor.GetGetter<float>(scored.Schema["Score"]);
        var value = 0f;
        while (cursor.MoveNext())
        {
            score(ref value);
        }

        fixture.TakeWarnings().Should().ContainSingle().Which.Should()
            .EndWith("VAE scoring (cursor): 1 of 8 rows had NaN or infinite values; their outputs are NaN.");
        cursor.Dispose();
        fixture.TakeWarnings().Should().BeEmpty("one warning per cursor");
    }

    [Fact]
    public void A_row_whose_vector_breaks_its_declared_length_is_refused_by_the_row_mapper_with_its_position()
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumn("Features", new VectorDataViewType(NumberDataViewType.Single, SyntheticData.Width));
        var row = new ShortVectorRow(builder.ToSchema());
        var mapper = _vae.GetRowToRowMapper(row.Schema);
        using var mapped = mapper.GetRow(row, [mapper.OutputSchema["Score"]]);
        var score = mapped.GetGetter<float>(mapper.OutputSchema["Score"]);
        var value = 0f;

        var read = () => score(ref value);

        read.Should().Throw<ArgumentException>().WithMessage("Input data, column 'Features', row 4: vector has 3 values; expected 64.");
    }

    /// <summary>A row at position 4 whose Features getter breaks the schema's vector length.</summary>
    private sealed class ShortVectorRow(DataViewSchema schema) : DataViewRow
    {
        public override DataViewSchema Schema => schema;

        public override long Position => 4;

        public override long Batch => 0;

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = new DataViewRowId(4, 0);

        public override bool IsColumnActive(DataViewSchema.Column column) => true;

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            ValueGetter<VBuffer<float>> features = (ref VBuffer<float> value) => value = new VBuffer<float>(3, [0.5f, 0.5f, 0.5f]);
            return (ValueGetter<TValue>)(Delegate)features;
        }
    }

    /// <summary>A view that knows its row count and can shuffle (delegating the cursors to another view).</summary>
    private sealed class KnownCountView(IDataView inner, long rows) : IDataView
    {
        public bool CanShuffle => true;

        public DataViewSchema Schema => inner.Schema;

        public long? GetRowCount() => rows;

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
            => inner.GetRowCursor(columnsNeeded.Select(c => inner.Schema[c.Index]));

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
            => [GetRowCursor(columnsNeeded, rand)];
    }
}
