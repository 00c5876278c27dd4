

def test_a_hit_leaves_the_random_state_where_training_left_it(tmp_path):
    """What the caller draws after training (the next model's weights) must not depend on the cache."""
    def draws_while_training(model):
        torch.rand(5)  # as a Lightning run does: shuffling, dropout, ...
        return Trainer()(model)

    torch.manual_seed(3)
    cached_training(tiny_model(), draws_while_training, "key", folder=tmp_path)
    after_miss = torch.rand(3)
    torch.manual_seed(3)
    cached_training(tiny_model(), draws_while_training, "key", folder=tmp_path)
    assert torch.equal(torch.rand(3), after_miss)
