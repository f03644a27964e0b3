# embed.cmake - turn a text file into a C string: cmake -DIN=f -DOUT=f.c -DSYM=name -P embed.cmake
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE "${OUT}" "/* generated from ${IN} by cmake/embed.cmake; do not edit */\nconst char ${SYM}[] = {${body}0};\nconst long ${SYM}_len = ${len};\n")
