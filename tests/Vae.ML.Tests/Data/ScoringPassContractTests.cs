using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Vae.ML.Data;
using Vae.ML.Tests.Core;
using Vae.ML.Tests.Reliability;

namespace Vae.ML.Tests.Data;

/// <summary>
/// What a scoring pass counts and where its warning goes, the row mapper's argument checks, and the column buffers'
/// errors. Written for the survivors of the Data folder's Stryker run (docs/testing.md, "Mutation testing").
/// </summary>
public class ScoringPassContractTests(ScoringModelFixture fixture) : IClassFixture<ScoringModelFixture>
{
    [Fact]
    public void A_cursor_counts_the_rows_whose_outputs_were_read_even_when_reading_starts_at_the_second_row()
    {
        var rows = SyntheticData.Rows(8, seed: 51);
        rows[1].Features[0] = float.NaN;
        var scored = fixture.Vae.Transform(fixture.Context.Data.LoadFromEnumerable(rows));
        fixture.TakeWarnings();

        using (var cursor = scored.GetRowCursor([scored.Schema["Score"]]))
        {
            var score = cursor.GetGetter<float>(scored.Schema["Score"]);
            var value = 0f;
            cursor.MoveNext().Should().BeTrue(); // row 0: not read
            while (cursor.MoveNext())
            {
                score(ref value);
            }
        }

        fixture.TakeWarnings().Should().ContainSingle().Which.Should()
            .EndWith("VAE scoring (cursor): 1 of 7 rows had NaN or infinite values; their outputs are NaN.");
    }

    [Fact]
    public void The_scoring_warning_comes_from_the_Vae_channel()
    {
        var ml = new MLContext(seed: 0);
        var sources = new List<string>();
        ml.Log += (_, e) =>
        {
            if (e.Kind == ChannelMessageKind.Warning)
            {
                lock (sources)
                {
                    sources.Add(e.Source);
                }
            }
        };
        using var vae = ml.Transforms.Vae(new VaeOptions { HiddenSizes = [4], Epochs = 1, Seed = 1, Device = "cpu" }).Fit(SyntheticData.Load(ml, 16));
        var row = SyntheticData.Matrix(SyntheticData.Rows(1, seed: 2));
        row[0] = float.NaN;

        vae.Score(row).Single().Should().Be(float.NaN);

        sources.Should().ContainSingle().Which.Should().Be("Vae");
    }

    [Fact]
    public void The_row_mapper_refuses_a_null_schema_or_row_by_name()
    {
        fixture.Vae.Invoking(v => v.GetRowToRowMapper(null!)).Should().Throw<ArgumentNullException>().WithParameterName("inputSchema");

        var data = SyntheticData.Load(fixture.Context, 2);
        var mapper = fixture.Vae.GetRowToRowMapper(data.Schema);
        mapper.Invoking(m => m.GetRow(null!, mapper.OutputSchema)).Should().Throw<ArgumentNullException>().WithParameterName("input");
    }

    [Fact]
    public void A_mapped_row_asked_for_no_vae_output_does_not_read_the_features()
    {
        var data = SyntheticData.Load(fixture.Context, 2);
        var mapper = fixture.Vae.GetRowToRowMapper(data.Schema);
        using var input = data.GetRowCursor([data.Schema["Label"]]); // the features are not active

        using var row = mapper.GetRow(input, [mapper.OutputSchema["Label"]]);

        input.MoveNext().Should().BeTrue();
        uint label = 9;
        row.GetGetter<uint>(mapper.OutputSchema["Label"])(ref label);
        label.Should().Be(0);
    }

    [Fact]
    public void A_column_buffer_passes_on_the_data_views_own_error_not_a_reflection_wrapper()
    {
        var data = SyntheticData.Load(fixture.Context, 2);
        using var cursor = data.GetRowCursor([]); // no column active: ML.NET refuses a getter

        var create = () => ColumnBuffer.Create(cursor, data.Schema["Label"], 4);

        // ML.NET's own exception (an ArgumentOutOfRangeException naming the inactive column), as a direct call would throw it.
        create.Should().ThrowExactly<ArgumentOutOfRangeException>().WithMessage("*not active*").WithParameterName("column");
    }
}
