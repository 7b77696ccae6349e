"""Reference solutions to the exercises at the end of notebooks/04_pretrain_ag_news.ipynb."""
import torch
from torch import nn

import helpers as H


def course_schedule(lr, epochs, gamma=0.1):
    """The learning rate during each epoch, with StepLR stepped once at the end of every epoch."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=gamma)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])  # the rate this epoch trains at
        opt.step()                              # the epoch's training
        scheduler.step()                        # the step the course forgot
    return lrs


def one_cycle_lrs(lr, steps):
    """The learning rate of make_optimizer's schedule during each of `steps` batches."""
    opt, sched = H.make_optimizer(nn.Linear(2, 2), lr, steps)
    lrs = []
    for _ in range(steps):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return lrs
