/* commands.h - the vamos commands that live in their own files (main.c
 * dispatches to them with argv from the command name on). Each returns
 * the exit status: 0 ok, 1 failed, 2 bad usage. */
#ifndef VAMOS_COMMANDS_H
#define VAMOS_COMMANDS_H

int cmd_vocab_main(int argc, char **argv);   /* vocab.c */
int cmd_train_main(int argc, char **argv);   /* train.c */
int cmd_eval_main(int argc, char **argv);    /* eval.c */
int cmd_average_main(int argc, char **argv); /* average.c */

#endif
