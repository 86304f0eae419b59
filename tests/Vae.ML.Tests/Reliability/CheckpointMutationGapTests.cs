using System.Buffers.Binary;
using System.Text.Json;
using Vae.ML.Persistence;
using Vae.ML.Tests.Persistence;
using Vae.ML.Torch;
using static Vae.ML.Tests.Reliability.TrainingTestSupport;

namespace Vae.ML.Tests.Reliability;

/// <summary>
/// Every check of the checkpoint reader and of <see cref="VaeCheckpoint.CheckResumable"/>, one at a time, with its
/// boundary accepted: the damaged checkpoints here carry valid checksums (they are written by the writer, or resealed
/// after an edit), so only the check under test can refuse them. Written for the surviving and uncovered Stryker
/// mutants of <c>VaeCheckpoint</c> (docs/testing.md, "Mutation testing").
/// </summary>
public class CheckpointMutationGapTests
{
    /// <summary>A real 2-epoch checkpoint of a 8-3-2 MLP (fast to train), read back.</summary>
    private static readonly Lazy<(VaeCheckpointRun Run, VaeTransformer.ColumnNames Columns, VaeTrainingState State, byte[] Bytes)> Saved = new(() =>
    {
        var bytes = SmallCheckpointBytes();
        var (run, columns, state) = Read(bytes);
        return (run, columns, state, bytes);
    });

    private static VaeCheckpointRun Run => Saved.Value.Run;

    private static VaeTrainingState State => Saved.Value.State;

    private static readonly Dictionary<string, Func<VaeCheckpointRun, VaeCheckpointRun>> OutOfDomainEdits = new()
    {
        { "BatchSize 0", r => r with { BatchSize = 0 } },
        { "Epochs 0", r => r with { Epochs = 0 } },
        { "TrainingRows 0", r => r with { TrainingRows = 0 } },
        { "ValidationRows -1", r => r with { ValidationRows = -1 } },
        { "KlWarmupEpochs -1", r => r with { KlWarmupEpochs = -1 } },
        { "EarlyStoppingPatience 0", r => r with { EarlyStoppingPatience = 0 } },
        { "LearningRate 0", r => r with { LearningRate = 0 } },
        { "LearningRate -1e-3", r => r with { LearningRate = -1e-3 } },
        { "DeviceType gpu", r => r with { DeviceType = "gpu" } },
        { "DeviceType CPU", r => r with { DeviceType = "CPU" } },
    };

    public static TheoryData<string> OutOfDomain => new(OutOfDomainEdits.Keys);

    [Theory]
    [MemberData(nameof(OutOfDomain))]
    public void Each_training_option_outside_its_domain_is_refused(string change)
    {
        var bytes = Written(OutOfDomainEdits[change](Run), State);

        var read = () => Read(bytes);

        read.Should().Throw<InvalidDataException>(change)
            .WithMessage("cp is not a valid Vae.ML checkpoint: its 'training_options' hold a value outside its domain.");
    }

    private static readonly Dictionary<string, Func<VaeCheckpointRun, VaeCheckpointRun>> OnTheBoundaryEdits = new()
    {
        { "BatchSize 1", r => r with { BatchSize = 1 } },
        { "Epochs = the checkpoint's epoch", r => r with { Epochs = 2 } },
        { "TrainingRows 1", r => r with { TrainingRows = 1 } },
        { "ValidationRows 0", r => r with { ValidationRows = 0 } },
        { "KlWarmupEpochs 0", r => r with { KlWarmupEpochs = 0 } },
        { "EarlyStoppingPatience 1", r => r with { EarlyStoppingPatience = 1 } },
        { "EarlyStoppingPatience off", r => r with { EarlyStoppingPatience = null } },
        { "the smallest LearningRate", r => r with { LearningRate = double.Epsilon } },
        { "the largest LearningRate", r => r with { LearningRate = double.MaxValue } },
    };

    public static TheoryData<string> OnTheBoundary => new(OnTheBoundaryEdits.Keys);

    [Theory]
    [MemberData(nameof(OnTheBoundary))]
    public void Training_options_on_the_edge_of_their_domain_are_read_back(string change)
    {
        var run = OnTheBoundaryEdits[change](Run);

        var (read, _, state) = Read(Written(run, State));

        (read with { HiddenSizes = run.HiddenSizes }).Should().Be(run, change);
        read.HiddenSizes.Should().Equal(run.HiddenSizes);
        state.Epoch.Should().Be(2);
    }

    [Theory]
    [InlineData("1e400", "its 'training_options' hold a value outside its domain.")]
    [InlineData("-1e400", "its 'training_options' hold a value outside its domain.")]
    [InlineData("\"NaN\"", "its 'training_options' metadata is not valid JSON (*).")]
    [InlineData("\"Infinity\"", "its 'training_options' metadata is not valid JSON (*).")]
    public void A_learning_rate_that_is_not_a_finite_positive_number_is_refused(string learningRate, string message)
    {
        // 1e400 parses as +infinity; the named literals are not JSON numbers to the reader.
        var bytes = Resealed(Saved.Value.Bytes, m => m["training_options"] = Json(m["training_options"], o => o["learningRate"] = System.Text.Json.Nodes.JsonNode.Parse(learningRate)));

        FluentActions.Invoking(() => Read(bytes)).Should().Throw<InvalidDataException>().WithMessage("cp is not a valid Vae.ML checkpoint: " + message);
    }

    [Fact]
    public void A_beta_that_differs_from_the_weights_beta_is_refused()
    {
        var bytes = Resealed(Saved.Value.Bytes, m => m[VaeModelFormat.Keys.Beta] = "2");

        FluentActions.Invoking(() => Read(bytes)).Should().Throw<InvalidDataException>()
            .WithMessage("cp is not a valid Vae.ML checkpoint: its 'training_options' hold a value outside its domain.");
    }

    [Theory]
    [InlineData("0")]
    [InlineData("2")]
    [InlineData("x")]
    [InlineData("+1")]
    [InlineData(" 1")]
    [InlineData("")]
    public void Checkpoint_versions_other_than_1_are_refused(string version)
    {
        var bytes = Resealed(Saved.Value.Bytes, m => m["checkpoint_version"] = version);

        FluentActions.Invoking(() => Read(bytes)).Should().Throw<InvalidDataException>()
            .WithMessage($"cp is not a valid Vae.ML checkpoint: it has checkpoint version '{version}'; this Vae.ML reads versions 1 to 1.");
    }

    [Fact]
    public void The_metadata_a_checkpoint_needs_is_named_when_it_is_missing_or_unreadable()
    {
        var bytes = Saved.Value.Bytes;
        void Refused(Action<Dictionary<string, string>> edit, string message)
        {
            var edited = Resealed(bytes, edit);
            FluentActions.Invoking(() => Read(edited)).Should().Throw<InvalidDataException>().WithMessage("cp is not a valid Vae.ML checkpoint: " + message);
        }

        Refused(m => m.Remove("checkpoint_version"), "it is a model file without training state ('checkpoint_version' is missing).");
        Refused(m => m.Remove("training_options"), "'training_options' is missing.");
        Refused(m => m["training_options"] = "null", "its 'training_options' metadata is null.");
        Refused(m => m["training_options"] = "{", "its 'training_options' metadata is not valid JSON (*).");
        Refused(m => m["training_options"] = Json(m["training_options"], o => o.Remove("hiddenSizes")), "its 'training_options' describe another network than its weights.");
        Refused(m => m["training_options"] = Json(m["training_options"], o => o["latentDimension"] = 3), "its 'training_options' describe another network than its weights.");
        Refused(m => m["training_options"] = Json(m["training_options"], o => o["inputSize"] = 9), "its 'training_options' describe another network than its weights.");
        Refused(m => m.Remove("epoch"), "its 'epoch' is not between 1 and the run's 2 epochs.");
        Refused(m => m["epoch"] = "two", "its 'epoch' is not between 1 and the run's 2 epochs.");
        Refused(m => m["epoch"] = "0", "its 'epoch' is not between 1 and the run's 2 epochs.");
        Refused(m => m["epoch"] = "3", "its 'epoch' is not between 1 and the run's 2 epochs.");
        Refused(m => m["epoch"] = "1", "its history does not list epochs 1 to 1.");
    }

    [Fact]
    public void A_history_numbered_other_than_1_to_the_epoch_is_refused()
    {
        var history = State.History;
        var renumbered = State with { History = [history[0], history[1] with { Epoch = 3 }] };
        var swapped = State with { History = [history[1], history[0]] };

        foreach (var state in new[] { renumbered, swapped })
        {
            FluentActions.Invoking(() => Read(Written(Run, state))).Should().Throw<InvalidDataException>()
                .WithMessage("cp is not a valid Vae.ML checkpoint: its history does not list epochs 1 to 2.");
        }
    }

    [Fact]
    public void The_file_holds_the_documented_extra_tensors_and_metadata()
    {
        // docs/reliability.md: optimizer.{name}.exp_avg and .exp_avg_sq (F32, the parameter's shape), .step (I64 scalar),
        // generator.cpu (U8, torch.get_rng_state()), and the metadata checkpoint_version, training_options, epoch.
        var bytes = Saved.Value.Bytes;
        var header = Safetensors.ReadHeader(new MemoryStream(bytes), bytes.Length, "cp");
        var entries = header.Entries.ToDictionary(e => e.Name);
        var expected = new List<(string Name, string DType, long[] Shape)>();
        foreach (var (name, shape) in new (string, long[])[]
                 {
                     ("fc1.weight", [3, 8]), ("fc1.bias", [3]), ("fc21.weight", [2, 3]), ("fc21.bias", [2]), ("fc22.weight", [2, 3]),
                     ("fc22.bias", [2]), ("fc3.weight", [3, 2]), ("fc3.bias", [3]), ("fc4.weight", [8, 3]), ("fc4.bias", [8]),
                 })
        {
            expected.Add((name, "F32", shape));
            expected.Add(($"optimizer.{name}.exp_avg", "F32", shape));
            expected.Add(($"optimizer.{name}.exp_avg_sq", "F32", shape));
            expected.Add(($"optimizer.{name}.step", "I64", []));
        }

        expected.Add(("generator.cpu", "U8", [5056]));
        entries.Values.Select(e => (e.Name, e.DType, e.Shape)).Should().BeEquivalentTo(expected);

        header.Metadata["checkpoint_version"].Should().Be("1");
        header.Metadata["epoch"].Should().Be("2");
        using var options = JsonDocument.Parse(header.Metadata["training_options"]);
        var root = options.RootElement;
        (root.GetProperty("inputSize").GetInt32(), root.GetProperty("batchSize").GetInt32(), root.GetProperty("epochs").GetInt32(),
                root.GetProperty("seed").GetInt64(), root.GetProperty("trainingRows").GetInt64(), root.GetProperty("deviceType").GetString(),
                root.GetProperty("architecture").GetString())
            .Should().Be((8, 8, 2, 7L, 16L, "cpu", "Mlp"));

        // Two epochs of two batches: every step is 4, written as a little-endian int64.
        var step = entries["optimizer.fc1.weight.step"];
        bytes.AsSpan((int)(header.DataStart + step.Begin), 8).ToArray().Should().Equal(4, 0, 0, 0, 0, 0, 0, 0);
    }

    [Fact]
    public void Optimizer_state_and_generators_round_trip_exactly()
    {
        var optimizer = State.Optimizer.Select((a, k) => a with
        {
            Step = 0x0102030405060708L + k,
            ExpAvg = a.ExpAvg.Select((_, i) => (i + 1) * 0.25f + k).ToArray(),
            ExpAvgSq = a.ExpAvgSq.Select((_, i) => (i + 1) * 1.5f - k).ToArray(),
        }).ToList();
        var device = Enumerable.Range(0, 16).Select(i => (byte)(200 + i)).ToArray();
        var best = State.Parameters.Select(p => (p.Name, p.Shape, p.Values.Select(v => -v).ToArray())).ToList();
        var state = State with { Optimizer = optimizer, DeviceGeneratorState = device, BestParameters = best };
        var run = Run with { DeviceType = "cuda", EarlyStoppingPatience = 2 };

        var (_, _, read) = Read(Written(run, state));

        read.Optimizer.Select(a => (a.Name, a.Step, a.ExpAvg, a.ExpAvgSq))
            .Should().BeEquivalentTo(optimizer.Select(a => (a.Name, a.Step, a.ExpAvg, a.ExpAvgSq)), o => o.WithStrictOrdering());
        read.DeviceGeneratorState.Should().Equal(device);
        read.CpuGeneratorState.Should().Equal(State.CpuGeneratorState);
        read.BestParameters.Should().NotBeNull();
        read.BestParameters!.Select(p => (p.Name, p.Shape, p.Values)).Should().BeEquivalentTo(best, o => o.WithStrictOrdering());

        var (_, _, plain) = Read(Saved.Value.Bytes);
        plain.BestParameters.Should().BeNull("a run without early stopping has no best weights");
        plain.DeviceGeneratorState.Should().BeNull("a CPU run has no device generator");
    }

    [Fact]
    public void Training_state_that_does_not_match_the_network_or_the_run_is_refused()
    {
        const string Prefix = "cp is not a valid Vae.ML checkpoint: ";
        void Refused(VaeCheckpointRun run, VaeTrainingState state, string message)
            => FluentActions.Invoking(() => Read(Written(run, state))).Should().Throw<InvalidDataException>().WithMessage(Prefix + message);

        Refused(Run, State with { Optimizer = State.Optimizer.Skip(1).ToList() },
            "its training state does not match its network: missing [optimizer.fc1.weight.exp_avg, optimizer.fc1.weight.exp_avg_sq, optimizer.fc1.weight.step], unexpected [].");
        Refused(Run, State with { DeviceGeneratorState = [1, 2, 3] }, "its training state does not match its network: missing [], unexpected [generator.device].");
        Refused(Run with { DeviceType = "cuda" }, State, "its training state does not match its network: missing [generator.device], unexpected [].");

        var best = State.Parameters.ToList();
        Refused(Run, State with { BestParameters = best }, "it holds best.* weights but its run has no early stopping.");
        Refused(Run with { EarlyStoppingPatience = 3 }, State with { BestParameters = best.Take(1).ToList() },
            "its training state does not match its network: missing [best.fc1.bias, best.fc21.weight, *], unexpected [].");

        Refused(Run, State with { CpuGeneratorState = [] }, "tensor 'generator.cpu' is U8 [0]; expected U8 with one dimension of generator state.");
        Refused(Run, State with { CpuGeneratorState = new byte[(1 << 20) + 1] },
            "tensor 'generator.cpu' is U8 [1048577]; expected U8 with one dimension of generator state.");
        Refused(Run, State with { Optimizer = State.Optimizer.Select((a, i) => i == 3 ? a with { Step = -1 } : a).ToList() },
            "tensor 'optimizer.fc21.bias.step' holds the negative step -1.");
    }

    [Fact]
    public void Generator_states_of_1_byte_to_1_MiB_and_a_step_of_0_are_accepted()
    {
        foreach (var generator in new[] { new byte[] { 42 }, Enumerable.Range(0, 1 << 20).Select(i => (byte)i).ToArray() })
        {
            var state = State with
            {
                CpuGeneratorState = generator,
                Optimizer = State.Optimizer.Select(a => a with { Step = 0 }).ToList(),
            };

            var (_, _, read) = Read(Written(Run, state));

            read.CpuGeneratorState.Should().Equal(generator);
            read.Optimizer.Should().OnlyContain(a => a.Step == 0);
        }
    }

    [Fact]
    public void Extra_tensors_of_the_wrong_dtype_or_shape_are_refused()
    {
        const string Prefix = "cp is not a valid Vae.ML checkpoint: ";
        void Refused(Func<Safetensors.RawTensor, Safetensors.RawTensor> edit, string message)
        {
            var bytes = Resealed(Saved.Value.Bytes, _ => { }, edit);
            FluentActions.Invoking(() => Read(bytes)).Should().Throw<InvalidDataException>().WithMessage(Prefix + message);
        }

        Refused(t => t.Name == "optimizer.fc1.bias.step" ? t with { DType = "U64" } : t, "tensor 'optimizer.fc1.bias.step' is U64 []; expected I64 [].");
        Refused(t => t.Name == "optimizer.fc1.bias.step" ? t with { Shape = [1] } : t, "tensor 'optimizer.fc1.bias.step' is I64 [1]; expected I64 [].");
        Refused(t => t.Name == "optimizer.fc1.weight.exp_avg" ? t with { Shape = [8, 3] } : t, "tensor 'optimizer.fc1.weight.exp_avg' is F32 [8, 3]; expected F32 [3, 8].");
        Refused(t => t.Name == "optimizer.fc4.bias.exp_avg_sq" ? t with { DType = "I32" } : t, "tensor 'optimizer.fc4.bias.exp_avg_sq' is I32 [8]; expected F32 [8].");
        Refused(t => t.Name == "generator.cpu" ? t with { DType = "I8" } : t, "tensor 'generator.cpu' is I8 [5056]; expected U8 with one dimension of generator state.");
        Refused(t => t.Name == "generator.cpu" ? t with { Shape = [2, 2528] } : t, "tensor 'generator.cpu' is U8 [2, 2528]; expected U8 with one dimension of generator state.");
    }

    private static readonly Dictionary<string, Func<VaeCheckpointRun, VaeCheckpointRun>> DifferencesEdits = new()
    {
        { "the architecture (input-hidden-latent)", r => r with { HiddenSizes = [4] } },
        { nameof(VaeOptions.Likelihood), r => r with { Likelihood = VaeLikelihood.Gaussian } },
        { nameof(VaeOptions.StandardizeFeatures), r => r with { StandardizeFeatures = true } },
        { nameof(VaeOptions.BatchSize), r => r with { BatchSize = 9 } },
        { nameof(VaeOptions.LearningRate), r => r with { LearningRate = BitConverter.Int64BitsToDouble(BitConverter.DoubleToInt64Bits(r.LearningRate) + 1) } },
        { nameof(VaeOptions.Beta), r => r with { Beta = 0.5 } },
        { nameof(VaeOptions.Seed), r => r with { Seed = 8 } },
        { nameof(VaeOptions.KlWarmupEpochs), r => r with { KlWarmupEpochs = 1 } },
        { nameof(VaeOptions.EarlyStoppingPatience), r => r with { EarlyStoppingPatience = 2 } },
        { nameof(VaeOptions.Device), r => r with { DeviceType = "cuda" } },
        { "training data rows", r => r with { TrainingRows = 17 } },
        { nameof(VaeOptions.MaxInMemoryBytes), r => r with { Streamed = true } },
        { nameof(VaeOptions.ValidationData) + " rows", r => r with { ValidationRows = 4 } },
        { nameof(VaeOptions.Epochs) + " (at least the checkpoint's epoch)", r => r with { Epochs = 1 } },
    };

    [Fact]
    public void A_tensor_outside_the_checkpoint_prefixes_is_refused_by_the_model_format()
    {
        // optimizer.*, generator.* and best.* are the only extras a checkpoint may hold; anything else is not training state.
        var bytes = Forgery.Resealed(Saved.Value.Bytes, _ => { }, added: [new Safetensors.RawTensor("foo", "U8", [1], [1])]);

        FluentActions.Invoking(() => Read(bytes)).Should().Throw<InvalidDataException>()
            .WithMessage("cp holds tensors besides the network's: [foo]. A training checkpoint is not a model file.");
        foreach (var prefix in new[] { "optimizer.", "generator.", "best." })
        {
            var extra = Forgery.Resealed(Saved.Value.Bytes, _ => { }, added: [new Safetensors.RawTensor(prefix + "foo", "U8", [1], [1])]);
            FluentActions.Invoking(() => Read(extra)).Should().Throw<InvalidDataException>()
                .WithMessage($"cp is not a valid Vae.ML checkpoint: its training state does not match its network: missing [], unexpected [{prefix}foo].");
        }
    }

    [Fact]
    public void A_missing_checkpoint_file_is_named_as_a_checkpoint()
    {
        using var folder = new TempFolder();
        var path = folder.File("checkpoint-epoch-0001.safetensors");

        FluentActions.Invoking(() => VaeCheckpoint.Read(path)).Should().Throw<FileNotFoundException>()
            .WithMessage($"Checkpoint '{Path.GetFullPath(path)}' does not exist.").Which.FileName.Should().Be(path);
    }

    public static TheoryData<string> Differences => new(DifferencesEdits.Keys);

    [Theory]
    [MemberData(nameof(Differences))]
    public void Each_difference_from_the_checkpointed_run_names_its_option(string option)
    {
        var check = () => VaeCheckpoint.CheckResumable(Run, savedEpoch: 2, DifferencesEdits[option](Run), "cp.safetensors");

        check.Should().Throw<ArgumentException>().Where(e => e.ParamName == option)
            .WithMessage($"ResumeFrom 'cp.safetensors' was trained with {option} *, but this run has *. Resume with the same options*");
    }

    [Fact]
    public void The_resume_message_shows_both_values_exactly()
    {
        void Says(Func<VaeCheckpointRun, VaeCheckpointRun> saved, Func<VaeCheckpointRun, VaeCheckpointRun> current, string values)
            => FluentActions.Invoking(() => VaeCheckpoint.CheckResumable(saved(Run), 2, current(Run), "cp"))
                .Should().Throw<ArgumentException>().WithMessage($"ResumeFrom 'cp' was trained with {values}. Resume with the same *");

        Says(r => r with { LearningRate = 0.1 }, r => r with { LearningRate = 0.30000000000000004 }, "LearningRate 0.1, but this run has 0.30000000000000004");
        Says(r => r with { Beta = 1 }, r => r with { Beta = 1.0000000000000002 }, "Beta 1, but this run has 1.0000000000000002");
        Says(r => r with { EarlyStoppingPatience = null }, r => r with { EarlyStoppingPatience = 5 }, "EarlyStoppingPatience off, but this run has 5");
        Says(r => r with { EarlyStoppingPatience = 4 }, r => r with { EarlyStoppingPatience = null }, "EarlyStoppingPatience 4, but this run has off");
        Says(r => r with { Streamed = false }, r => r with { Streamed = true }, "MaxInMemoryBytes training data held in memory, but this run has streamed data");
        Says(r => r with { Streamed = true }, r => r with { Streamed = false }, "MaxInMemoryBytes streamed training data, but this run has data held in memory");
        Says(r => r, r => r with { HiddenSizes = [5], LatentDimension = 3 }, "the architecture (input-hidden-latent) 8-3-2, but this run has 8-5-3");
        Says(r => r, r => r with { Epochs = 1 }, "Epochs (at least the checkpoint's epoch) 2, but this run has 1");
    }

    [Fact]
    public void The_same_run_with_as_many_or_more_epochs_resumes()
    {
        var same = () => VaeCheckpoint.CheckResumable(Run, 2, Run with { HiddenSizes = [3] }, "cp");
        var longer = () => VaeCheckpoint.CheckResumable(Run, 2, Run with { Epochs = 9 }, "cp");

        same.Should().NotThrow();
        longer.Should().NotThrow();
    }

    [Fact]
    public void Save_creates_the_folder_and_keeps_the_newest_N_or_all()
    {
        using var folder = new TempFolder();
        var nested = Path.Combine(folder.Path, "a", "b");
        string[] Names(string path) => Directory.GetFiles(path).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

        for (var epoch = 1; epoch <= 3; epoch++)
        {
            VaeCheckpoint.Save(nested, Run with { Epochs = 9 }, Saved.Value.Columns, StateAt(epoch), keepLast: null)
                .Should().Be(Path.Combine(nested, $"checkpoint-epoch-000{epoch}.safetensors"));
        }

        Names(nested).Should().Equal("checkpoint-epoch-0001.safetensors", "checkpoint-epoch-0002.safetensors", "checkpoint-epoch-0003.safetensors");

        VaeCheckpoint.Save(nested, Run with { Epochs = 9 }, Saved.Value.Columns, StateAt(4), keepLast: 9);
        Names(nested).Should().HaveCount(4, "fewer checkpoints than keepLast are all kept");

        VaeCheckpoint.Save(nested, Run with { Epochs = 9 }, Saved.Value.Columns, StateAt(5), keepLast: 2);
        Names(nested).Should().Equal("checkpoint-epoch-0004.safetensors", "checkpoint-epoch-0005.safetensors");
        VaeCheckpoint.Read(Path.Combine(nested, "checkpoint-epoch-0005.safetensors")).State.Epoch.Should().Be(5);
    }

    /// <summary>The saved state relabelled as epoch <paramref name="epoch"/>, with a matching history.</summary>
    private static VaeTrainingState StateAt(int epoch)
        => State with { Epoch = epoch, History = Enumerable.Range(1, epoch).Select(e => State.History[0] with { Epoch = e }).ToList() };

    private static (VaeCheckpointRun, VaeTransformer.ColumnNames, VaeTrainingState) Read(byte[] bytes)
        => VaeCheckpoint.Read(new MemoryStream(bytes), "cp", bytes.Length);

    private static byte[] Written(VaeCheckpointRun run, VaeTrainingState state)
    {
        using var buffer = new MemoryStream();
        VaeCheckpoint.Write(buffer, run, Saved.Value.Columns, state);
        return buffer.ToArray();
    }

    private static byte[] Resealed(byte[] file, Action<Dictionary<string, string>> editMetadata, Func<Safetensors.RawTensor, Safetensors.RawTensor>? editTensor = null)
        => Forgery.Resealed(file, editMetadata, editTensor);

    private static string Json(string json, Action<System.Text.Json.Nodes.JsonObject> edit)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(json)!.AsObject();
        edit(node);
        return node.ToJsonString();
    }
}
